"""Sample grids: a row per example; columns occluded | mask | output | composite | ground truth."""

from __future__ import annotations

import os

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
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format `path`'s extension names; ValueError for any other extension."""
    fmt = IMAGE_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())
    if fmt is None:
        raise ValueError(f"output {path} must end in {', '.join(IMAGE_FORMATS)}")
    return fmt


def write_image(path: str | os.PathLike, image: np.ndarray, metadata: dict | None = None) -> None:
    """Writes a uint8 image in the format of `path`'s extension (JPEG at quality 95) through a
    temporary file in the same folder, so no half-written file is ever left. `metadata`
    (`data_pipeline.images.photo_metadata`: ICC profile, EXIF) is kept where the format allows
    (JPEG, PNG, WebP; not BMP)."""
    fmt = image_format(path)
    options = dict(metadata or {}) if fmt != "BMP" else {}
    if fmt == "JPEG":
        options["quality"] = 95
    with atomic.open_atomic(path, "wb") as f:
        Image.fromarray(image).save(f, format=fmt, **options)
