"""Dual-encoder inpainting generator (seed 5.3.1 and 6.1.1).

Two U-Net encoders read the same occluded image with its hole zeroed:

- a vanilla-conv encoder on `image ⊕ hole` (conv-conv per level, 2×2 max pool between levels,
  dropout in the deepest levels);
- a partial-conv encoder on `image` under the validity mask `1 − hole` (one PartialConv2d per
  level, stride 2 below the first), whose mask shrinks the hole layer by layer.

Both reach the same bottleneck resolution `H / 2**(levels − 1)`; the bottlenecks are
concatenated, projected by a 1×1 conv, passed through an atrous block (3×3 convs at several
dilation rates, in sequence, for a wide receptive field at the bottleneck) and decoded by one
decoder that, at each level, upsamples ×2 and concatenates the skips of both encoders.
The output is `sigmoid` in [0, 1] and composited as `pred·hole + input·(1 − hole)`.
Every width, kernel size and rate comes from `config.gen`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxinpaint.backends import XLA_OPS, LayerOps
from jaxinpaint.fills import SMOOTH_FILLS
from jaxinpaint.layers import PartialConv2d
from jaxinpaint.layers.fill import pushpull_fill

# coarse fill -> (relaxation steps per pyramid level, order) of layers/fill.py; "none": the
# seed's generator, which paints the hole itself
COARSE_FILLS = {"none": None, **SMOOTH_FILLS}

_he = nn.initializers.he_normal()


def _conv(
    features: int, kernel: int = 3, dilation: int = 1, name: str | None = None, dtype: Any = None
) -> nn.Conv:
    return nn.Conv(
        features,
        (kernel, kernel),
        padding="SAME",
        kernel_dilation=(dilation, dilation),
        kernel_init=_he,
        name=name,
        dtype=dtype,
    )


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of an NHWC tensor."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _phase_taps(kernel: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """A 3-tap kernel axis folded for nearest ×2 upsampling: output 2p reads upsampled pixels
    2p−1, 2p, 2p+1 = input p−1, p, p (taps 0 | 1+2); output 2p+1 reads p, p, p+1 (taps 0+1 | 2)."""
    t0, t1, t2 = jnp.split(kernel, 3, axis=axis)
    return jnp.concatenate([t0, t1 + t2], axis), jnp.concatenate([t0 + t1, t2], axis)


# Padding of each output phase's 2-tap window: phase 0 reads (p−1, p), phase 1 reads (p, p+1).
_PHASE_PADS = ((1, 0), (0, 1))


def upsample2x_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`conv(upsample2x(x), kernel)` ("SAME", stride 1, no bias) for NHWC `x` and a 3×3 HWIO
    `kernel`, computed at `x`'s resolution: each of the four output phases (row parity, column
    parity) is a 2×2 convolution of `x` with taps of `kernel` summed as the upsampling repeats
    them (zero padding of the upsampled image is zero padding of `x`). Same result up to float
    rounding, 16/36 of the multiply-adds, and no ×4 upsampled copy of `x`."""
    if kernel.shape[:2] != (3, 3):
        raise ValueError(f"upsample2x_conv3x3 needs a 3x3 kernel, got {kernel.shape}")
    n, h, w, _ = x.shape
    rows = _phase_taps(kernel, 0)
    phases = []
    for a in range(2):
        cols = _phase_taps(rows[a], 1)
        phases.append(
            jnp.stack(
                [
                    lax.conv_general_dilated(
                        x,
                        cols[b],
                        (1, 1),
                        (_PHASE_PADS[a], _PHASE_PADS[b]),
                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                    )
                    for b in range(2)
                ],
                axis=3,
            )
        )  # [N, H, W, 2 (column parity), C]
    y = jnp.stack(phases, axis=2)  # [N, H, 2 (row parity), W, 2, C]
    return y.reshape(n, 2 * h, 2 * w, kernel.shape[-1])


class UpConv(nn.Module):
    """`nn.Conv(features, (3, 3), padding="SAME")` applied to `upsample2x(x)`, with the same
    parameters (`kernel` [3, 3, Cin, features], `bias`), initialisation and result, computed by
    `upsample2x_conv3x3` at the input's resolution (2.25× fewer FLOPs)."""

    features: int
    kernel_init: nn.initializers.Initializer = _he
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    dtype: Any = None  # computation dtype (None: promoted from the input and the parameters)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        return upsample2x_conv3x3(x, kernel) + bias


class VanillaEncoder(nn.Module):
    """Conv-conv(-pool) U-Net encoder; returns the per-level activations (last = bottleneck)."""

    widths: Sequence[int]
    dropout_levels: int = 2
    dropout_rate: float = 0.5
    dtype: Any = None
    ops: LayerOps = XLA_OPS

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> list[jax.Array]:
        levels = len(self.widths)
        skips = []
        for i, width in enumerate(self.widths):
            if i > 0:
                x = self.ops.max_pool_2x2(x)
            x = nn.relu(_conv(width, name=f"conv{i}_a", dtype=self.dtype)(x))
            x = nn.relu(_conv(width, name=f"conv{i}_b", dtype=self.dtype)(x))
            if i >= levels - self.dropout_levels and self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            skips.append(x)
        return skips


class PartialEncoder(nn.Module):
    """One PartialConv2d per level (stride 2 below the first); mask updated layer by layer."""

    widths: Sequence[int]
    kernels: Sequence[int]
    dtype: Any = None
    ops: LayerOps = XLA_OPS

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array) -> list[jax.Array]:
        skips = []
        mask = jnp.broadcast_to(valid, x.shape)
        for i, (width, k) in enumerate(zip(self.widths, self.kernels, strict=True)):
            stride = 1 if i == 0 else 2
            x, mask = PartialConv2d(
                width,
                kernel_size=(k, k),
                strides=(stride, stride),
                dtype=self.dtype,
                conv_general_dilated=self.ops.conv_general_dilated,
                name=f"pconv{i}",
            )(x, mask)
            x = nn.relu(x)
            skips.append(x)
        return skips


class Generator(nn.Module):
    """`Generator(...)(occluded, hole, train=...) -> (pred, composite)`, images NHWC in [0, 1]."""

    widths: Sequence[int]  # vanilla encoder (and decoder) widths, shallow → deep
    partial_widths: Sequence[int]  # partial encoder widths, one per level
    partial_kernels: Sequence[int]  # partial encoder kernel sizes, one per level
    atrous_width: int = 512
    atrous_rates: Sequence[int] = (2, 4, 8)
    dropout_levels: int = 2
    dropout_rate: float = 0.5
    # "pushpull" | "harmonic" | "biharmonic": start from that smooth fill, learn the rest.
    coarse_fill: str = "none"
    # Activations and convolutions (parameters stay float32; the coarse fill, the partial
    # convs' window sums, the output and the composite are float32 whatever this is).
    dtype: Any = jnp.float32
    # How strided convs and max pools are differentiated (jaxinpaint.backends; same values).
    ops: LayerOps = XLA_OPS

    @nn.compact
    def __call__(
        self, occluded_BxHxWx3: jax.Array, hole_BxHxWx1: jax.Array, *, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        levels = len(self.widths)
        if len(self.partial_widths) != levels or len(self.partial_kernels) != levels:
            raise ValueError(
                f"config.gen: widths, partial_widths and partial_kernels need one entry per "
                f"level, got {len(self.widths)}, {len(self.partial_widths)}, "
                f"{len(self.partial_kernels)}"
            )
        h, w = occluded_BxHxWx3.shape[1:3]
        if h % 2 ** (levels - 1) or w % 2 ** (levels - 1):
            raise ValueError(
                f"image size {h}x{w} must divide by 2**(levels-1) = {2 ** (levels - 1)} "
                f"for {levels} generator levels"
            )
        hole = hole_BxHxWx1.astype(occluded_BxHxWx3.dtype)
        valid = 1.0 - hole
        # The occluder's pixels must not leak into the prediction: both encoders see a zeroed hole
        # (or, with a coarse fill, the vanilla encoder sees the hole filled from its border).
        known = occluded_BxHxWx3 * valid
        if self.coarse_fill not in COARSE_FILLS:
            raise ValueError(
                f"config.gen.coarse_fill must be one of {list(COARSE_FILLS)}, "
                f"got {self.coarse_fill!r}"
            )
        smooth = COARSE_FILLS[self.coarse_fill]
        coarse = known if smooth is None else pushpull_fill(known, valid, *smooth)

        dtype = self.dtype
        vanilla = VanillaEncoder(
            self.widths,
            self.dropout_levels,
            self.dropout_rate,
            dtype=dtype,
            ops=self.ops,
            name="vanilla_encoder",
        )(jnp.concatenate([coarse, hole], axis=-1), train=train)
        partial = PartialEncoder(
            self.partial_widths,
            self.partial_kernels,
            dtype=dtype,
            ops=self.ops,
            name="partial_encoder",
        )(known, valid)

        x = jnp.concatenate([vanilla[-1], partial[-1]], axis=-1)
        x = nn.relu(_conv(self.atrous_width, kernel=1, name="fuse", dtype=dtype)(x))
        for j, rate in enumerate(self.atrous_rates):
            x = nn.relu(_conv(self.atrous_width, dilation=rate, name=f"atrous{j}", dtype=dtype)(x))

        for i in reversed(range(levels - 1)):
            width = self.widths[i]
            x = nn.relu(UpConv(width, dtype=dtype, name=f"up{i}")(x))  # = conv(upsample2x(x))
            x = jnp.concatenate([x, vanilla[i], partial[i]], axis=-1)
            x = nn.relu(_conv(width, name=f"dec{i}_a", dtype=dtype)(x))
            x = nn.relu(_conv(width, name=f"dec{i}_b", dtype=dtype)(x))

        if self.coarse_fill == "none":
            out = _conv(3, kernel=1, name="out", dtype=dtype)(x)
            pred = nn.sigmoid(out.astype(jnp.float32))
        else:  # a correction of the coarse fill, zero at initialisation
            out = nn.Conv(3, (1, 1), kernel_init=nn.initializers.zeros, dtype=dtype, name="out")
            pred = jnp.clip(coarse + out(x).astype(jnp.float32), 0.0, 1.0)
        composite = pred * hole + occluded_BxHxWx3 * valid
        return pred, composite


def generator_from_config(
    gen_config, dtype: Any = jnp.float32, ops: LayerOps = XLA_OPS
) -> Generator:
    """Builds the generator from `config.gen`, computing in `dtype` (`config.compute_dtype`)
    with `ops` (`config.layer_ops`, resolved by `jaxinpaint.backends.layer_ops`)."""
    return Generator(
        widths=tuple(gen_config.widths),
        partial_widths=tuple(gen_config.partial_widths),
        partial_kernels=tuple(gen_config.partial_kernels),
        atrous_width=gen_config.atrous_width,
        atrous_rates=tuple(gen_config.atrous_rates),
        dropout_levels=gen_config.dropout_levels,
        dropout_rate=gen_config.dropout_rate,
        coarse_fill=gen_config.get("coarse_fill", "none"),
        dtype=dtype,
        ops=ops,
    )
