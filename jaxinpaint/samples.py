"""Sample grids: a row per example; columns occluded | mask | output | composite | ground truth."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from PIL import Image

COLUMNS = ("occluded", "mask", "output", "composite", "ground truth")
_GAP = 2  # pixels of white between tiles


def _to_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.asarray(img, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return img


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
    cols = [_to_uint8(a) for a in (occluded, mask_img, output, composite, original)]
    b, h, w, _ = cols[0].shape
    grid = np.full(
        (b * h + (b - 1) * _GAP, len(cols) * w + (len(cols) - 1) * _GAP, 3), 255, np.uint8
    )
    for r in range(b):
        for c, col in enumerate(cols):
            y, x = r * (h + _GAP), c * (w + _GAP)
            grid[y : y + h, x : x + w] = col[r]
    return grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes `image` to `path` through a temporary file, so no half-written PNG is left."""
    directory = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(image).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
