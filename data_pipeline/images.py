"""Careful image reading: every bad input becomes a `SkipImage` with a short reason, never a crash.

Face folders scraped from the web hold everything: zero-byte files, HTML saved as .jpg, truncated
downloads, CMYK scans, 16-bit PNGs, grayscale photos, thumbnails and decompression bombs. The
builder counts each kind in its closing summary, so the reasons are a small fixed vocabulary.

Two readers share the checks on the file: `load_rgb` curates training data and skips whatever
would teach the model wrong colours; `load_photo` reads a user's photo (or mask) and converts
every pixel format it can, refusing only files that are not a whole image.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# The photos every command reads (by extension, any case): one list for a folder's listing and
# for a single photo, so that neither takes what the other would skip.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# Reasons a photo is skipped; the summary counts them under these names.
ZERO_BYTE = "zero-byte file"
UNREADABLE = "unreadable file"
NOT_AN_IMAGE = "not an image"
TRUNCATED = "truncated or corrupt image"
CMYK = "CMYK colour"
HIGH_BIT_DEPTH = "16-bit or float pixels"
GRAYSCALE = "grayscale"
TOO_SMALL = "too small"
TOO_LARGE = "too large (decompression-bomb guard)"
UNSUPPORTED = "unsupported pixel format"
NO_FACE = "no face found"
DUPLICATE = "near-duplicate"

DEFAULT_MIN_SIDE = 48  # a Haar face needs at least ~48 px; smaller photos hold no usable face
DEFAULT_MAX_PIXELS = (
    64_000_000  # bigger than any camera photo; stops decoding a bomb before it starts
)
# What `load_photo` asks for when a file is not a photo at all.
EXPECTED_PHOTO = "expected a photo such as JPEG, PNG, WebP, BMP or TIFF"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 images as they are; float images in [0, 1] rounded to uint8 (clipped)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return np.clip(np.asarray(img, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


class SkipImage(Exception):
    """A photo that cannot be used; `reason` is one of the module constants."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


def list_images(root: str | os.PathLike) -> list[str]:
    """All image files under `root` (recursive, by extension), sorted for reproducibility."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"face folder {root!r} does not exist or is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(
            os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(found)


def _is_gray(rgb: np.ndarray) -> bool:
    """True when an RGB array carries no colour (a grayscale photo saved as RGB)."""
    step = max(1, min(rgb.shape[:2]) // 64)  # a subsample is enough and keeps this cheap
    sub = rgb[::step, ::step].astype(np.int16)
    spread = np.abs(sub[..., 0] - sub[..., 1]) + np.abs(sub[..., 1] - sub[..., 2])
    return float(np.mean(spread)) < 2.0


@contextlib.contextmanager
def _open(path: str, max_pixels: int, expected: str = ""):
    """The lazily decoded image at `path`, once the checks that need only its header pass.

    Raises SkipImage for zero-byte, unreadable, non-image, truncated-header and too-large
    (> max_pixels) files; `expected`, when given, ends the detail of those that are not images.
    """
    tail = f"; {expected}" if expected else ""
    try:
        if os.path.getsize(path) == 0:
            raise SkipImage(path, ZERO_BYTE, expected)
        handle = open(path, "rb")  # noqa: SIM115 (closed below, after the lazy decode)
    except OSError as e:
        raise SkipImage(path, UNREADABLE, (e.strerror or str(e)) + tail) from None
    with handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on odd EXIF; the checks decide
        try:
            im = Image.open(handle)
        except UnidentifiedImageError:
            raise SkipImage(path, NOT_AN_IMAGE, expected) from None
        except Image.DecompressionBombError as e:
            raise SkipImage(path, TOO_LARGE, str(e)) from None
        except (OSError, ValueError, SyntaxError) as e:
            raise SkipImage(path, TRUNCATED, str(e) + tail) from None
        w, h = im.size
        if w * h > max_pixels:
            raise SkipImage(path, TOO_LARGE, f"{w}x{h} px > {max_pixels} px")
        yield im


def _upright(path: str, im: Image.Image, expected: str = "") -> Image.Image:
    """Decodes the pixels and applies the EXIF orientation; SkipImage(TRUNCATED) if they fail."""
    try:
        im.load()
        return ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise SkipImage(path, TRUNCATED, str(e) + (f"; {expected}" if expected else "")) from None


def _flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composites an image with alpha over `background` (giving RGB); others pass through."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode == "P" and "transparency" in im.info
    ):
        im = im.convert("RGBA")
        under = Image.new("RGBA", im.size, (*background, 255))
        im = Image.alpha_composite(under, im).convert("RGB")
    return im


def load_rgb(
    path: str | os.PathLike,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Reads a colour photo as an HxWx3 uint8 array, upright (EXIF orientation applied).

    Raises SkipImage for zero-byte, unreadable, non-image, truncated, CMYK, 16-bit/float,
    grayscale, too-small (shorter side < min_side) and too-large (> max_pixels) files.
    The size is checked from the header before any pixel is decoded.
    """
    path = os.fspath(path)
    with _open(path, max_pixels) as im:
        w, h = im.size
        if min(w, h) < min_side:
            raise SkipImage(path, TOO_SMALL, f"{w}x{h} px, shorter side < {min_side}")
        if im.mode == "CMYK":
            # Converting without the ICC profile gives wrong skin tones: skip, do not teach them.
            raise SkipImage(path, CMYK)
        if im.mode.startswith(("I", "F")) or _png_bit_depth(im) > 8:
            raise SkipImage(path, HIGH_BIT_DEPTH, f"mode {im.mode}")
        if im.mode in ("1", "L", "LA"):
            raise SkipImage(path, GRAYSCALE, f"mode {im.mode}")
        im = _upright(path, im)
        try:
            # transparent pixels read as white, not black
            rgb = np.asarray(_flatten(im, (255, 255, 255)).convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:
            raise SkipImage(path, TRUNCATED, str(e)) from None
    if _is_gray(rgb):
        raise SkipImage(path, GRAYSCALE, "RGB file without colour")
    return rgb


def load_photo(
    path: str | os.PathLike,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Reads a user's photo as an HxWx3 uint8 RGB array, upright (EXIF orientation applied).

    Converts instead of refusing: grayscale (1, L, LA) and palette (P) become RGB; CMYK becomes
    RGB by Pillow's plain formula (no ICC profile); 16-bit and 32-bit integer pixels are taken
    as 0-65535 and scaled to 0-255 (48/64-bit RGB PNGs Pillow reduces to 8 bits itself); float
    pixels are taken as 0-1. Alpha is not dropped: transparent pixels are composited over
    `background`, white by default as an image viewer shows them.

    Raises SkipImage, naming the file and what was expected, for zero-byte, unreadable,
    non-image, truncated or corrupt files, too-large ones (> max_pixels, checked from the header
    before any pixel is decoded: the decompression-bomb guard) and pixel formats Pillow cannot
    convert to RGB.
    """
    path = os.fspath(path)
    with _open(path, max_pixels, EXPECTED_PHOTO) as im:
        im = _upright(path, im, "expected a complete image file")
        try:
            if im.mode.startswith(("I", "F")):
                im = _to_8bit(im)
            rgb = np.asarray(_flatten(im, background).convert("RGB"), dtype=np.uint8)
        except ValueError as e:  # e.g. LAB or multi-channel float: Pillow has no RGB conversion
            raise SkipImage(path, UNSUPPORTED, f"mode {im.mode}: {e}") from None
    return rgb


def photo_metadata(path: str | os.PathLike) -> dict[str, bytes]:
    """What a rewritten copy of a photo should keep: `icc_profile` (its colour space; only for
    RGB photos, as `load_photo` gives other modes converted to plain RGB) and `exif` (camera,
    date, GPS, ...) with the orientation set to upright (`load_photo` applied it) and without the
    embedded thumbnail, which would still show the occluder (Pillow does not write IFD1, where
    it lives). Keyword arguments for Pillow's `save`; empty when the file has neither or they
    cannot be read."""
    kept = {}
    try:
        with _open(os.fspath(path), DEFAULT_MAX_PIXELS) as im:
            icc = im.info.get("icc_profile")
            if icc and im.mode in ("RGB", "RGBA"):
                kept["icc_profile"] = icc
            exif = im.getexif()
            if exif:
                exif[ExifTags.Base.Orientation] = 1
                kept["exif"] = exif.tobytes()  # IFD0 and its Exif/GPS IFDs; never IFD1
    except (SkipImage, OSError, ValueError, SyntaxError, KeyError, TypeError):
        return {}  # metadata is a courtesy: a photo with unreadable EXIF is still reconstructed
    return kept


def _to_8bit(im: Image.Image) -> Image.Image:
    """An L image from one channel of 16/32-bit integer (0-65535) or float (0-1) pixels."""
    pixels = np.asarray(im).astype(np.float32)
    scale = 255.0 if im.mode == "F" else 255.0 / 65535.0
    pixels = np.nan_to_num(pixels * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "L")


def _png_bit_depth(im: Image.Image) -> int:
    """Bits per channel of a PNG from its IHDR chunk (Pillow reduces 48-bit RGB to 8 silently)."""
    if im.format != "PNG" or not hasattr(im, "fp") or im.fp is None:
        return 8
    pos = im.fp.tell()
    try:
        im.fp.seek(24)  # 8-byte signature + 4 length + 4 'IHDR' + 4 width + 4 height
        depth = im.fp.read(1)
    finally:
        im.fp.seek(pos)
    return depth[0] if depth else 8
