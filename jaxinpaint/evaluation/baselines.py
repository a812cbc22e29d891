"""Classical inpainting baselines: OpenCV's Telea (fast marching) and Navier-Stokes methods, and
the harmonic fill that the `harmonic` generator starts from (its network's share is the gap)."""

from __future__ import annotations

import cv2
import numpy as np

_CV2_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
METHODS = (*_CV2_METHODS, "harmonic")
HARMONIC_RELAX = 20  # Jacobi steps per level, as the generator's `coarse_fill="harmonic"`


def classical_inpaint(
    image_HxWx3: np.ndarray, hole_HxW: np.ndarray, method: str = "telea", radius: int = 5
) -> np.ndarray:
    """Fills the hole of a uint8 RGB image with `cv2.inpaint` or the harmonic fill; pixels outside
    the hole are kept.

    Args:
      image_HxWx3: uint8 RGB image (the hole's content is ignored).
      hole_HxW: hole mask, `[H, W]` or `[H, W, 1]`, non-zero on the pixels to fill.
      method: "telea", "ns" (OpenCV) or "harmonic" (`pushpull_fill` relaxed).
      radius: neighbourhood radius in pixels (OpenCV's methods).
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
    if method == "harmonic":
        fill = pushpull_fill(image, hole_u8, relax=HARMONIC_RELAX)
        return np.clip(np.rint(fill), 0, 255).astype(np.uint8)
    return cv2.inpaint(np.ascontiguousarray(image), hole_u8, radius, _CV2_METHODS[method])


def pushpull_fill(image_HxWxC: np.ndarray, hole_HxW: np.ndarray, relax: int = 0) -> np.ndarray:
    """The hole filled smoothly from its border by push-pull (with `relax` Jacobi steps of
    Laplace's equation per level: harmonic), in float32, at any image size: the NumPy/OpenCV twin
    of `jaxinpaint.layers.fill.pushpull_fill` (which needs sizes that halve), for
    `Reconstructor`'s full-resolution base. Pixels outside the hole are returned as given."""
    image = np.asarray(image_HxWxC, np.float32)
    valid = (np.asarray(hole_HxW).reshape(image.shape[:2]) == 0).astype(np.float32)
    sums, weights = [image * valid[..., None]], [valid]
    while min(sums[-1].shape[:2]) > 2:
        h, w = sums[-1].shape[:2]
        size = ((w + 1) // 2, (h + 1) // 2)
        sums.append(
            cv2.resize(sums[-1], size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        )
        weights.append(cv2.resize(weights[-1], size, interpolation=cv2.INTER_AREA))
    fill = sums[-1] / np.maximum(weights[-1], 1e-6)[..., None]
    for level in reversed(range(len(sums) - 1)):
        h, w = sums[level].shape[:2]
        up = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        known = sums[level] / np.maximum(weights[level], 1e-6)[..., None]
        trust = np.clip(4.0 * weights[level], 0.0, 1.0)[..., None]
        fill = known * trust + up * (1.0 - trust)
        empty = (weights[level] <= 0)[..., None]
        for _ in range(relax):
            fill = np.where(
                empty,
                cv2.filter2D(fill, -1, _NEIGHBOURS, borderType=cv2.BORDER_REPLICATE).reshape(
                    fill.shape
                ),
                fill,
            )
    return np.where(valid[..., None] > 0, image, fill)


_NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
