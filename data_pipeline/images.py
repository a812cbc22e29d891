"""Careful image reading: every bad input becomes a `SkipImage` with a short reason, never a crash.

Face folders scraped from the web hold everything: zero-byte files, HTML saved as .jpg, truncated
downloads, CMYK scans, 16-bit PNGs, grayscale photos, thumbnails and decompression bombs. The
builder counts each kind in its closing summary, so the reasons are a small fixed vocabulary.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

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
NO_FACE = "no face found"
DUPLICATE = "near-duplicate"

DEFAULT_MIN_SIDE = 48  # a Haar face needs at least ~48 px; smaller photos hold no usable face
DEFAULT_MAX_PIXELS = (
    64_000_000  # bigger than any camera photo; stops decoding a bomb before it starts
)


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
    try:
        if os.path.getsize(path) == 0:
            raise SkipImage(path, ZERO_BYTE)
        handle = open(path, "rb")  # noqa: SIM115 (closed below, after the lazy decode)
    except OSError as e:
        raise SkipImage(path, UNREADABLE, e.strerror or str(e)) from None
    with handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on odd EXIF; the checks below decide
        try:
            im = Image.open(handle)
        except UnidentifiedImageError:
            raise SkipImage(path, NOT_AN_IMAGE) from None
        except Image.DecompressionBombError as e:
            raise SkipImage(path, TOO_LARGE, str(e)) from None
        except (OSError, ValueError, SyntaxError) as e:
            raise SkipImage(path, TRUNCATED, str(e)) from None
        w, h = im.size
        if w * h > max_pixels:
            raise SkipImage(path, TOO_LARGE, f"{w}x{h} px > {max_pixels} px")
        if min(w, h) < min_side:
            raise SkipImage(path, TOO_SMALL, f"{w}x{h} px, shorter side < {min_side}")
        if im.mode == "CMYK":
            # Converting without the ICC profile gives wrong skin tones: skip, do not teach them.
            raise SkipImage(path, CMYK)
        if im.mode.startswith(("I", "F")) or _png_bit_depth(im) > 8:
            raise SkipImage(path, HIGH_BIT_DEPTH, f"mode {im.mode}")
        if im.mode in ("1", "L", "LA"):
            raise SkipImage(path, GRAYSCALE, f"mode {im.mode}")
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)  # transparent pixels read as white, not black
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:
            raise SkipImage(path, TRUNCATED, str(e)) from None
    if _is_gray(rgb):
        raise SkipImage(path, GRAYSCALE, "RGB file without colour")
    return rgb


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
