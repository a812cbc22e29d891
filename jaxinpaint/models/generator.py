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

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxinpaint.layers import PartialConv2d, fast_pool

_he = nn.initializers.he_normal()


def _conv(features: int, kernel: int = 3, dilation: int = 1, name: str | None = None) -> nn.Conv:
    return nn.Conv(
        features,
        (kernel, kernel),
        padding="SAME",
        kernel_dilation=(dilation, dilation),
        kernel_init=_he,
        name=name,
    )


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of an NHWC tensor."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class VanillaEncoder(nn.Module):
    """Conv-conv(-pool) U-Net encoder; returns the per-level activations (last = bottleneck)."""

    widths: Sequence[int]
    dropout_levels: int = 2
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> list[jax.Array]:
        levels = len(self.widths)
        skips = []
        for i, width in enumerate(self.widths):
            if i > 0:
                x = fast_pool.max_pool_2x2(x)
            x = nn.relu(_conv(width, name=f"conv{i}_a")(x))
            x = nn.relu(_conv(width, name=f"conv{i}_b")(x))
            if i >= levels - self.dropout_levels and self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            skips.append(x)
        return skips


class PartialEncoder(nn.Module):
    """One PartialConv2d per level (stride 2 below the first); mask updated layer by layer."""

    widths: Sequence[int]
    kernels: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array) -> list[jax.Array]:
        skips = []
        mask = jnp.broadcast_to(valid, x.shape)
        for i, (width, k) in enumerate(zip(self.widths, self.kernels, strict=True)):
            stride = 1 if i == 0 else 2
            x, mask = PartialConv2d(
                width, kernel_size=(k, k), strides=(stride, stride), name=f"pconv{i}"
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
        # The occluder's pixels must not leak into the prediction: both encoders see a zeroed hole.
        known = occluded_BxHxWx3 * valid

        vanilla = VanillaEncoder(
            self.widths, self.dropout_levels, self.dropout_rate, name="vanilla_encoder"
        )(jnp.concatenate([known, hole], axis=-1), train=train)
        partial = PartialEncoder(self.partial_widths, self.partial_kernels, name="partial_encoder")(
            known, valid
        )

        x = jnp.concatenate([vanilla[-1], partial[-1]], axis=-1)
        x = nn.relu(_conv(self.atrous_width, kernel=1, name="fuse")(x))
        for j, rate in enumerate(self.atrous_rates):
            x = nn.relu(_conv(self.atrous_width, dilation=rate, name=f"atrous{j}")(x))

        for i in reversed(range(levels - 1)):
            width = self.widths[i]
            x = nn.relu(_conv(width, name=f"up{i}")(upsample2x(x)))
            x = jnp.concatenate([x, vanilla[i], partial[i]], axis=-1)
            x = nn.relu(_conv(width, name=f"dec{i}_a")(x))
            x = nn.relu(_conv(width, name=f"dec{i}_b")(x))

        pred = nn.sigmoid(_conv(3, kernel=1, name="out")(x))
        composite = pred * hole + occluded_BxHxWx3 * valid
        return pred, composite


def generator_from_config(gen_config) -> Generator:
    """Builds the generator from `config.gen`."""
    return Generator(
        widths=tuple(gen_config.widths),
        partial_widths=tuple(gen_config.partial_widths),
        partial_kernels=tuple(gen_config.partial_kernels),
        atrous_width=gen_config.atrous_width,
        atrous_rates=tuple(gen_config.atrous_rates),
        dropout_levels=gen_config.dropout_levels,
        dropout_rate=gen_config.dropout_rate,
    )
