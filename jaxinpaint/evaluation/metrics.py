"""PSNR and SSIM over whole images and over the hole, batched and jit-able.

Images are NHWC floats in `[0, data_range]`; masks are `[B, H, W, 1]` with 1 on the hole. Every
function returns one value per image. A hole metric of an image whose hole is empty is NaN, so that
means over a bucket can skip it (`np.nanmean`) instead of counting it as perfect.

SSIM follows Wang et al. 2004 as scikit-image computes it with `gaussian_weights=True, sigma=1.5,
use_sample_covariance=False`: an 11x11 Gaussian window, constants K1=0.01 and K2=0.03, per channel;
the whole-image score averages the SSIM map away from the 5-pixel border (where the window would
leave the image), and the hole score averages the map (with reflected borders) over the hole.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # scipy.ndimage's window radius: int(truncate * sigma + 0.5) = 5


def _masked_mean(values_BxHxWxC: jax.Array, mask_BxHxWx1: jax.Array) -> jax.Array:
    weights = jnp.broadcast_to(mask_BxHxWx1, values_BxHxWxC.shape).astype(values_BxHxWxC.dtype)
    total = jnp.sum(weights, axis=(1, 2, 3))
    return jnp.where(total > 0, jnp.sum(values_BxHxWxC * weights, axis=(1, 2, 3)) / total, jnp.nan)


@functools.partial(jax.jit, static_argnames="data_range")
def psnr(a: jax.Array, b: jax.Array, mask: jax.Array | None = None, data_range: float = 1.0):
    """Peak signal-to-noise ratio in dB per image (over the hole when `mask` is given); inf when
    the images are identical there."""
    sq_err = jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32))
    mse = jnp.mean(sq_err, axis=(1, 2, 3)) if mask is None else _masked_mean(sq_err, mask)
    return 10.0 * jnp.log10(data_range**2 / mse)


def _gaussian_window(sigma: float) -> np.ndarray:
    radius = int(_SSIM_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


def _gaussian_filter(x_BxHxWxC: jax.Array, window: np.ndarray) -> jax.Array:
    """Separable Gaussian blur per channel; borders as SciPy's 'reflect' (half-sample symmetric)."""
    r = len(window) // 2
    c = x_BxHxWxC.shape[-1]
    x = jnp.pad(x_BxHxWxC, ((0, 0), (r, r), (r, r), (0, 0)), mode="symmetric")
    dn = ("NHWC", "HWIO", "NHWC")
    w = jnp.asarray(window)
    kernel_h = jnp.tile(w.reshape(-1, 1, 1, 1), (1, 1, 1, c))
    kernel_w = jnp.tile(w.reshape(1, -1, 1, 1), (1, 1, 1, c))
    conv = functools.partial(
        jax.lax.conv_general_dilated,
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=dn,
        feature_group_count=c,
        precision=jax.lax.Precision.HIGHEST,
    )
    return conv(conv(x, kernel_h), kernel_w)


def ssim_map(a: jax.Array, b: jax.Array, data_range: float = 1.0) -> jax.Array:
    """The per-pixel, per-channel SSIM map, `[B, H, W, C]`."""
    a = a.astype(jnp.float32)
    b = b.astype(jnp.float32)
    window = _gaussian_window(_SSIM_SIGMA)
    blur = functools.partial(_gaussian_filter, window=window)
    ux, uy = blur(a), blur(b)
    vx = blur(a * a) - ux * ux
    vy = blur(b * b) - uy * uy
    vxy = blur(a * b) - ux * uy
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


@functools.partial(jax.jit, static_argnames="data_range")
def ssim(a: jax.Array, b: jax.Array, mask: jax.Array | None = None, data_range: float = 1.0):
    """Structural similarity per image (over the hole when `mask` is given)."""
    s = ssim_map(a, b, data_range)
    if mask is not None:
        return _masked_mean(s, mask)
    r = len(_gaussian_window(_SSIM_SIGMA)) // 2
    return jnp.mean(s[:, r:-r, r:-r, :], axis=(1, 2, 3))
