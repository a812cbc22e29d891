"""Partial convolution (Liu et al. 2018) with NVIDIA's multi-channel semantics.

The reference is NVIDIA's `PartialConv2d(multi_channel=True, return_mask=True)`:

    s        = window sum of the mask over kh·kw·Cin        (zero padding counts as hole)
    update   = clip(s, 0, 1)
    ratio    = kh·kw·Cin / (s + 1e-8) · update
    y        = (conv(x·mask) − b)·ratio + b,  then  y ·= update     (holes are exactly 0)
    new_mask = update, repeated over the Cout channels

`conv(x·mask)` already excludes the bias, so `y = (conv(x·mask)·ratio + b)·update`.

The window sum is computed as a channel sum of the mask followed by one single-channel box sum
(two separable 1-D window sums), which equals NVIDIA's full `conv(mask, ones(kh, kw, Cin, Cout))`
at a tiny fraction of its cost. As in
the reference (which computes it under `torch.no_grad`), no gradient flows through the mask path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = str | Sequence[tuple[int, int]]

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_EPS = 1e-8


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return pair


def _check_padding(padding: Padding) -> Padding:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"padding must be 'SAME', 'VALID' or ((lo, hi), (lo, hi)), got {padding!r}"
            )
        return padding.upper()
    pads = tuple(tuple(p) for p in padding)
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise ValueError(
            f"explicit padding must be ((top, bottom), (left, right)) >= 0, got {padding!r}"
        )
    return pads


def _box_sum(
    x_NxHxWx1: jax.Array,
    window: tuple[int, int],
    window_strides: tuple[int, int],
    padding: Padding,
    rhs_dilation: tuple[int, int],
) -> jax.Array:
    """Sum over each (dilated, strided, zero-padded) window, as a convolution with a kernel of ones
    would compute it, in two separable 1-D passes: on a CPU this is several times faster than a
    single-channel convolution, whose cost would otherwise show next to the real one."""
    if isinstance(padding, str):
        span = tuple((k - 1) * d + 1 for k, d in zip(window, rhs_dilation, strict=True))
        padding = lax.padtype_to_pads(x_NxHxWx1.shape[1:3], span, window_strides, padding)
    (kh, kw), (sh, sw), (dh, dw) = window, window_strides, rhs_dilation
    rows = lax.reduce_window(
        x_NxHxWx1, 0.0, lax.add, (1, kh, 1, 1), (1, sh, 1, 1),
        ((0, 0), tuple(padding[0]), (0, 0), (0, 0)), window_dilation=(1, dh, 1, 1),
    )  # fmt: skip
    return lax.reduce_window(
        rows, 0.0, lax.add, (1, 1, kw, 1), (1, 1, sw, 1),
        ((0, 0), (0, 0), tuple(padding[1]), (0, 0)), window_dilation=(1, 1, dw, 1),
    )  # fmt: skip


def partial_conv(
    x: jax.Array,
    mask: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: int | Sequence[int] = (1, 1),
    padding: Padding = "SAME",
    dilation: int | Sequence[int] = (1, 1),
    conv_general_dilated: Callable = lax.conv_general_dilated,
) -> tuple[jax.Array, jax.Array]:
    """Partial convolution of NHWC `x` under `mask`; returns `(y, new_mask)`.

    Args:
      x: input, `[N, H, W, Cin]`.
      mask: validity in [0, 1] (1 = known pixel), the shape of `x` (one mask per channel); a
        `[N, H, W, 1]` mask stands for the same mask repeated over all Cin channels.
      kernel: HWIO weights, `[kh, kw, Cin, Cout]`.
      bias: optional `[Cout]`.
      strides, padding, dilation: as in `lax.conv_general_dilated` ("SAME", "VALID" or explicit
        `((top, bottom), (left, right))` padding; `dilation` is the kernel dilation).
      conv_general_dilated: the convolution of `x * mask` with `kernel`, with
        `lax.conv_general_dilated`'s signature (`jaxinpaint.backends.LayerOps` picks one).

    Returns:
      `y` of shape `[N, H', W', Cout]`, exactly 0 where the window saw no valid input, and
      `new_mask` of the same shape (values in [0, 1]).
    """
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(
            f"partial_conv expects NHWC x and HWIO kernel, got x{x.shape} and kernel{kernel.shape}"
        )
    kh, kw, cin, cout = kernel.shape
    if x.shape[-1] != cin:
        raise ValueError(f"x has {x.shape[-1]} channels but the kernel expects Cin={cin}")
    if mask.shape != x.shape and mask.shape != (*x.shape[:-1], 1):
        raise ValueError(
            f"mask must have x's shape {x.shape} or {(*x.shape[:-1], 1)}, got {mask.shape}"
        )
    if bias is not None and bias.shape != (cout,):
        raise ValueError(f"bias must have shape ({cout},), got {bias.shape}")
    strides, dilation = _pair(strides, "strides"), _pair(dilation, "dilation")
    padding = _check_padding(padding)

    mask = lax.stop_gradient(mask).astype(x.dtype)
    raw = conv_general_dilated(
        x * mask,
        kernel,
        window_strides=strides,
        padding=padding,
        rhs_dilation=dilation,
        dimension_numbers=_DIMENSION_NUMBERS,
    )

    # Window sum of the mask over kh·kw·Cin, in float32 so that large windows count exactly.
    if mask.shape[-1] == 1:
        mask_sum = mask.astype(jnp.float32) * cin
    else:
        mask_sum = jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.float32)
    window_sum = _box_sum(mask_sum, (kh, kw), strides, padding, dilation)
    update = jnp.clip(window_sum, 0.0, 1.0)
    ratio = (kh * kw * cin) / (window_sum + _EPS) * update

    y = raw * ratio.astype(raw.dtype)
    if bias is not None:
        y = (y + bias.astype(raw.dtype)) * update.astype(raw.dtype)
    new_mask = jnp.broadcast_to(update.astype(x.dtype), y.shape)
    return y, new_mask


class PartialConv2d(nn.Module):
    """Flax module around `partial_conv`: `y, new_mask = PartialConv2d(64)(x, mask)`."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: int | Sequence[int] = (1, 1)
    padding: Padding = "SAME"
    dilation: int | Sequence[int] = (1, 1)
    use_bias: bool = True
    dtype: Any = None  # computation dtype; None keeps the input's
    conv_general_dilated: Callable = lax.conv_general_dilated  # as in `partial_conv`
    param_dtype: Any = jnp.float32
    kernel_init: nn.initializers.Initializer = nn.initializers.he_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        kh, kw = _pair(tuple(self.kernel_size), "kernel_size")
        kernel = self.param(
            "kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features), self.param_dtype
        )
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        dtype = self.dtype or x.dtype
        return partial_conv(
            x.astype(dtype),
            mask,
            kernel.astype(dtype),
            None if bias is None else bias.astype(dtype),
            strides=self.strides,
            padding=self.padding,
            dilation=self.dilation,
            conv_general_dilated=self.conv_general_dilated,
        )
