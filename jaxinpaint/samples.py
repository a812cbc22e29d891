"""Sample grids: a row per example; columns occluded | mask | output | composite | ground truth."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
from PIL import Image

from data_pipeline import atomic
from data_pipeline.images import to_uint8

COLUMNS = ("occluded", "mask", "output", "composite", "ground truth")
_GAP = 2  # pixels of white between tiles


def _rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = to_uint8(img)
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def make_grid(
    occluded: np.ndarray,
    mask: np.ndarray,
    output: np.ndarray,
    composite: np.ndarray,
    original: np.ndarray,
) -> np.ndarray:
    """`[B, H, W, C]` arrays (uint8, or float in [0, 1]; mask 0/1) → one `uint8` RGB grid."""
    mask = np.asarray(mask)
    mask_img = (mask > 0).astype(np.float32) if mask.dtype == np.uint8 else mask
    cols = [_rgb_uint8(a) for a in (occluded, mask_img, output, composite, original)]
    b, h, w, _ = cols[0].shape
    grid = np.full(
        (b * h + (b - 1) * _GAP, len(cols) * w + (len(cols) - 1) * _GAP, 3), 255, np.uint8
    )
    for r in range(b):
        for c, col in enumerate(cols):
            y, x = r * (h + _GAP), c * (w + _GAP)
            grid[y : y + h, x : x + w] = col[r]
    return grid


# Pillow's format for each output extension.
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
LOSSLESS = ("PNG", "BMP", "TIFF", "WEBP")  # as written here: every pixel reads back unchanged
# How each format is written unless the caller says otherwise: WebP lossless (its lossy mode
# would change every pixel), TIFF deflated (lossless, smaller than raw).
DEFAULT_OPTIONS = {
    "JPEG": {"quality": 95},
    "WEBP": {"lossless": True},
    "TIFF": {"compression": "tiff_adobe_deflate"},
}
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}  # the formats' own limits, in pixels a side


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format `path`'s extension names; ValueError for any other extension."""
    fmt = IMAGE_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())
    if fmt is None:
        raise ValueError(f"output {path} must end in {', '.join(IMAGE_FORMATS)}")
    return fmt


def write_image(
    path: str | os.PathLike, image: np.ndarray, metadata: dict | None = None, **options
) -> str:
    """Writes a uint8 image in the format of `path`'s extension (with Pillow `save` `options`,
    or else `DEFAULT_OPTIONS`) through a temporary file in the same folder, so no half-written
    file is ever left. `metadata` (`data_pipeline.images.photo_metadata`: ICC profile, EXIF) is kept
    where the format allows (not BMP) and where it can be written: metadata the encoder refuses
    (Pillow: "EXIF data is too long" for JPEG's 64 KB) is left out, and the returned note says
    which and why ("" when all was kept).

    Raises ValueError, naming the file, when the image cannot be encoded in that format at all
    (larger than the format allows: WebP 16383 px a side, JPEG 65500), OSError when the file
    cannot be written."""
    fmt = image_format(path)
    h, w = image.shape[:2]
    if max(h, w) > MAX_SIDE.get(fmt, max(h, w)):
        raise ValueError(
            f"{path} cannot be written: {fmt} holds at most {MAX_SIDE[fmt]} px a side and the "
            f"image is {w}x{h} px; expected a .png or .tiff output"
        )
    options = options or DEFAULT_OPTIONS.get(fmt, {})  # not both: quality would scale qtables
    metadata = dict(metadata or {}) if fmt != "BMP" else {}
    im = Image.fromarray(image)
    # All the metadata, then without EXIF (the usual culprit), then none.
    tries = [metadata, {k: v for k, v in metadata.items() if k != "exif"}, {}]
    tries = [t for i, t in enumerate(tries) if t not in tries[:i]]
    first_error = None
    for kept in tries:
        encoded = io.BytesIO()
        try:
            im.save(encoded, format=fmt, **options, **kept)
        except (ValueError, OSError, struct.error) as e:
            first_error = first_error or e
            continue
        with atomic.open_atomic(path, "wb") as f:
            f.write(encoded.getvalue())
        dropped = [_METADATA_NAMES[k] for k in metadata if k not in kept]
        return f"written without its {' and '.join(dropped)} ({first_error})" if dropped else ""
    raise ValueError(f"{path} cannot be written as {fmt} ({first_error})")


_METADATA_NAMES = {"exif": "EXIF", "icc_profile": "colour profile"}
