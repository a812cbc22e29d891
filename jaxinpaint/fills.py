"""The fills every part of the project shares, NumPy/OpenCV only: OpenCV's Telea (fast
marching) and Navier-Stokes inpainting, and the smooth fills a generator starts from
(`config.gen.coarse_fill`; its network's share is the gap to its fill): harmonic and biharmonic,
both push-pull relaxed level by level at the model's resolution, and solved exactly (one sparse
factorisation, SciPy) at a photo's. The model (`layers/fill.py`, `models/generator.py`),
`Reconstructor`, `serve/` and the evaluation all import this module; it imports none of them.
"""

from __future__ import annotations

import cv2
import numpy as np

_CV2_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
# The smooth fills by name: (relaxation steps per level, order: 1 Laplace, 2 biharmonic). The
# generator's `coarse_fill`, `Reconstructor`'s base and the evaluation's rows all read this table.
SMOOTH_FILLS: dict[str, tuple[int, int]] = {
    "pushpull": (0, 1),
    "harmonic": (20, 1),
    "biharmonic": (40, 2),
}
METHODS = (*_CV2_METHODS, "harmonic", "biharmonic")
# Damping of the biharmonic Jacobi step: x -= OMEGA / 20 * Δ²x (20 is the 13-point stencil's
# centre). Δ² of the 5-point Laplacian has eigenvalues up to 64, so OMEGA < 40/64 keeps it stable.
BIHARMONIC_OMEGA = 0.6
# Tension of the solved full-resolution biharmonic base, τ² in (Δ² - τ²Δ)u = 0 (per pixel²): the
# exact biharmonic fill carries the border's slopes across the whole hole and overshoots on a
# photo's wide holes (a cheek's highlight becomes a bright blob); tension bends it back towards
# the harmonic fill beyond ~1/τ = 3 px of the border. Chosen on the demo's validation photos and
# its sample photo (docs/inpainter.md, "The full-resolution base").
BASE_TENSION = 0.1


def classical_inpaint(
    image_HxWx3: np.ndarray, hole_HxW: np.ndarray, method: str = "telea", radius: int = 5
) -> np.ndarray:
    """Fills the hole of a uint8 RGB image with `cv2.inpaint` or the harmonic fill; pixels outside
    the hole are kept.

    Args:
      image_HxWx3: uint8 RGB image (the hole's content is ignored).
      hole_HxW: hole mask, `[H, W]` or `[H, W, 1]`, non-zero on the pixels to fill.
      method: "telea", "ns" (OpenCV), or "harmonic" / "biharmonic" (`smooth_fill`).
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
    if method in SMOOTH_FILLS:
        return np.clip(np.rint(smooth_fill(image, hole_u8, method)), 0, 255).astype(np.uint8)
    return cv2.inpaint(np.ascontiguousarray(image), hole_u8, radius, _CV2_METHODS[method])


def smooth_fill(
    image_HxWxC: np.ndarray, hole_HxW: np.ndarray, name: str, relax: int | None = None
) -> np.ndarray:
    """`pushpull_fill` with the relaxation of `SMOOTH_FILLS[name]` (`relax` steps per level
    instead of its own, when given)."""
    if name not in SMOOTH_FILLS:
        raise ValueError(f"unknown smooth fill {name!r}; expected one of {list(SMOOTH_FILLS)}")
    steps, order = SMOOTH_FILLS[name]
    return pushpull_fill(image_HxWxC, hole_HxW, steps if relax is None else relax, order)


def smooth_fill_around_hole(
    image: np.ndarray, hole: np.ndarray, name: str, relax: int | None = None
) -> np.ndarray:
    """The smooth fill `name` of a photo's hole (float32), `image` elsewhere, made around the hole
    only: a large photo's fill costs what its hole needs.

    `relax=None`: the exact solution of the fill's equation (`solve_smooth_fill`: Laplace's for
    "harmonic" and "pushpull", the biharmonic one with `BASE_TENSION` for "biharmonic"); only
    the hole and the ring of pixels its equation reads are touched. A number:
    `smooth_fill(image, hole, name, relax)` on the hole's bounding box grown by half its size on
    every side (the relaxed fill; its push-pull pyramid sees that far)."""
    if name not in SMOOTH_FILLS:
        raise ValueError(f"unknown smooth fill {name!r}; expected one of {list(SMOOTH_FILLS)}")
    out = image.astype(np.float32)
    ys, xs = np.nonzero(hole)
    if not len(ys):
        return out
    order = SMOOTH_FILLS[name][1]
    if relax is None:  # the stencil reaches `order` pixels beyond the hole
        grow_y = grow_x = order
    else:
        grow_y = (ys.max() - ys.min() + 1) // 2 + 2
        grow_x = (xs.max() - xs.min() + 1) // 2 + 2
    y0, y1 = max(ys.min() - grow_y, 0), min(ys.max() + 1 + grow_y, hole.shape[0])
    x0, x1 = max(xs.min() - grow_x, 0), min(xs.max() + 1 + grow_x, hole.shape[1])
    box_image, box_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    if relax is None:
        tension = BASE_TENSION if order == 2 else 0.0
        out[y0:y1, x0:x1] = solve_smooth_fill(box_image, box_hole, order, tension)
    else:
        out[y0:y1, x0:x1] = smooth_fill(box_image, box_hole, name, relax)
    return out


def solve_smooth_fill(
    image_HxWxC: np.ndarray, hole_HxW: np.ndarray, order: int, tension: float = 0.0
) -> np.ndarray:
    """The hole filled with the exact solution of Laplace's equation (`order=1`: harmonic) or of
    the biharmonic one (`order=2`; with `tension` τ² > 0, (Δ² - τ²Δ)u = 0, a spline in tension)
    on the hole's pixels, the known pixels around it as boundary values (the ring 1 pixel deep
    for Laplace, 2 for the biharmonic 13-point stencil), in float32.

    Without tension it is the fixed point `pushpull_fill(image, hole, relax, order)` tends to as
    `relax` grows (the same 5-point Laplacian, applied twice for Δ², with the image's edge
    replicated), reached in one sparse LU factorisation (SuperLU, shared by the channels)
    instead of thousands of Jacobi steps: the biharmonic relaxation converges slowly (1000 steps
    per level leave tens of grey levels on a 100×40 px hole). The system is symmetric positive
    definite whenever a pixel is known; a hole without any known pixel is filled by push-pull
    alone."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (harmonic) or 2 (biharmonic), got {order}")
    if tension < 0:
        raise ValueError(f"tension must be >= 0, got {tension}")
    image = np.asarray(image_HxWxC, np.float32)
    h, w = image.shape[:2]
    inside = np.asarray(hole_HxW).reshape(h, w).ravel() != 0
    if not inside.any():
        return image.copy()
    if inside.all():
        return pushpull_fill(image, inside.reshape(h, w), 0, order)
    # Imported here: SciPy's sparse modules take 0.3-2 s to import, which every user of this
    # module (training, the crop fills) would pay without solving anything.
    import scipy.sparse.linalg

    laplacian = _laplacian(h, w)
    rows = laplacian[inside]
    if order == 2:
        rows = rows @ laplacian - tension * rows
    elif tension:
        raise ValueError(f"tension applies to the biharmonic fill (order 2), got order {order}")
    values = image.reshape(h * w, -1).astype(np.float64)
    known = -(rows[:, ~inside] @ values[~inside])
    # No pivoting is needed on a definite system, and symmetric mode keeps the fill-reducing
    # minimum-degree ordering of A + Aᵀ (2-4x faster here than the default COLAMD).
    factor = scipy.sparse.linalg.splu(
        rows[:, inside].tocsc(),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    out = values.astype(np.float32)
    out[inside] = factor.solve(known)
    return out.reshape(image.shape)


def _laplacian(h: int, w: int):
    """The 5-point Laplacian of an HxW image (pixels row-major) with its edge replicated, as
    `_filter(x, _LAPLACIAN)` applies it: a neighbour beyond the edge is the edge pixel itself;
    a `scipy.sparse.csr_matrix`."""
    import scipy.sparse

    index = np.arange(h * w).reshape(h, w)
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    neighbours = [
        index[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)].ravel()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))
    ]
    rows = np.tile(index.ravel(), 5)
    cols = np.concatenate([*neighbours, index.ravel()])
    vals = np.concatenate([np.ones(4 * h * w), np.full(h * w, -4.0)])
    # Duplicates (a replicated neighbour is the pixel itself) are summed by the conversion.
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(h * w, h * w))


def pushpull_fill(
    image_HxWxC: np.ndarray, hole_HxW: np.ndarray, relax: int = 0, order: int = 1
) -> np.ndarray:
    """The hole filled smoothly from its border by push-pull, with `relax` relaxation steps per
    level of Laplace's equation (`order=1`: harmonic) or of the biharmonic one (`order=2`), in
    float32, at any image size: the NumPy/OpenCV twin of `jaxinpaint.layers.fill.pushpull_fill`
    (which needs sizes that halve). Pixels outside the hole are returned as given.
    `Reconstructor`'s full-resolution base solves the same equations instead
    (`solve_smooth_fill`, through `smooth_fill_around_hole`)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (harmonic) or 2 (biharmonic), got {order}")
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
            if order == 1:  # Jacobi: each empty cell becomes the mean of its four neighbours
                relaxed = _filter(fill, _NEIGHBOURS)
            else:  # damped Jacobi of the biharmonic equation
                bilaplacian = _filter(_filter(fill, _LAPLACIAN), _LAPLACIAN)
                relaxed = fill - BIHARMONIC_OMEGA / 20.0 * bilaplacian
            fill = np.where(empty, relaxed, fill)
    return np.where(valid[..., None] > 0, image, fill)


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REPLICATE).reshape(x.shape)


_NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
