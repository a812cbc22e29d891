"""Classical inpainting baselines: OpenCV's Telea (fast marching) and Navier-Stokes methods."""

from __future__ import annotations

import cv2
import numpy as np

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def classical_inpaint(
    image_HxWx3: np.ndarray, hole_HxW: np.ndarray, method: str = "telea", radius: int = 5
) -> np.ndarray:
    """Fills the hole of a uint8 RGB image with `cv2.inpaint`; pixels outside the hole are kept.

    Args:
      image_HxWx3: uint8 RGB image (the hole's content is ignored).
      hole_HxW: hole mask, `[H, W]` or `[H, W, 1]`, non-zero on the pixels to fill.
      method: "telea" or "ns".
      radius: neighbourhood radius in pixels.
    """
    if method not in METHODS:
        raise ValueError(f"unknown inpainting method {method!r}; expected one of {sorted(METHODS)}")
    image = np.asarray(image_HxWx3)
    hole = np.asarray(hole_HxW)
    if hole.ndim == 3:
        hole = hole[..., 0]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
    if hole.shape != image.shape[:2]:
        raise ValueError(f"hole mask shape {hole.shape} does not match the image {image.shape[:2]}")
    hole_u8 = (hole > 0).astype(np.uint8)
    if not hole_u8.any():
        return image.copy()
    return cv2.inpaint(np.ascontiguousarray(image), hole_u8, radius, METHODS[method])
