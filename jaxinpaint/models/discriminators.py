"""Global and local discriminators, and the fixed-size crop around the hole for the local one.

Both are the seed's discriminator shape (5.3.1: strided convs with LeakyReLU, then dense) with
the two 4096-wide dense layers replaced by one linear layer on the flattened features: at
256×256 those layers alone would hold ~150M parameters. Each returns one logit per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxinpaint.backends import XLA_OPS, LayerOps


class Discriminator(nn.Module):
    """Strided 5×5 convs + LeakyReLU(0.2), flatten, linear → logit `[B]`."""

    widths: Sequence[int]
    kernel: int = 5
    dtype: Any = jnp.float32  # activations and convolutions; the logits are float32
    ops: LayerOps = XLA_OPS  # how the strided convs are differentiated (jaxinpaint.backends)

    @nn.compact
    def __call__(self, img_BxHxWx3: jax.Array) -> jax.Array:
        x = img_BxHxWx3 * 2.0 - 1.0  # centre the [0, 1] images
        for i, width in enumerate(self.widths):
            x = nn.Conv(
                width,
                (self.kernel, self.kernel),
                strides=(2, 2),
                padding="SAME",
                dtype=self.dtype,
                name=f"conv{i}",
                conv_general_dilated=self.ops.conv_general_dilated,
            )(x)
            x = nn.leaky_relu(x, 0.2)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1, dtype=self.dtype, name="logit")(x)[:, 0].astype(jnp.float32)


def hole_crop_origin(hole_BxHxWx1: jax.Array, size: int) -> jax.Array:
    """Top-left corner `[B, 2]` (row, col) of a `size`² window centred on each hole's bbox.

    The window is clamped inside the image; an empty mask gives the centred window.
    """
    _, h, w, _ = hole_BxHxWx1.shape
    if size > min(h, w):
        raise ValueError(f"local discriminator crop {size} is larger than the image {h}x{w}")
    occupied = hole_BxHxWx1[..., 0] > 0.5

    def centre(any_along: jax.Array, length: int) -> jax.Array:
        idx = jnp.arange(length)
        lo = jnp.min(jnp.where(any_along, idx, length), axis=-1)
        hi = jnp.max(jnp.where(any_along, idx, -1), axis=-1)
        empty = hi < lo
        return jnp.where(empty, (length - 1) / 2.0, (lo + hi) / 2.0)

    rows = centre(jnp.any(occupied, axis=2), h)
    cols = centre(jnp.any(occupied, axis=1), w)
    top = jnp.clip(jnp.round(rows - (size - 1) / 2.0), 0, h - size).astype(jnp.int32)
    left = jnp.clip(jnp.round(cols - (size - 1) / 2.0), 0, w - size).astype(jnp.int32)
    return jnp.stack([top, left], axis=-1)


def crop(img_BxHxWxC: jax.Array, origin_Bx2: jax.Array, size: int) -> jax.Array:
    """`size`² crops of each image at its own `(row, col)` origin."""

    def one(img: jax.Array, origin: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(img, (origin[0], origin[1], 0), (size, size, img.shape[-1]))

    return jax.vmap(one)(img_BxHxWxC, origin_Bx2)


def discriminators_from_config(
    disc_config, dtype: Any = jnp.float32, ops: LayerOps = XLA_OPS
) -> dict[str, Discriminator]:
    """`{"global": ..., "local": ...}` from `config.disc`, computing in `dtype` with `ops`."""
    return {
        "global": Discriminator(tuple(disc_config.global_widths), disc_config.kernel, dtype, ops),
        "local": Discriminator(tuple(disc_config.local_widths), disc_config.kernel, dtype, ops),
    }
