"""What depends on the backend, chosen in this one place: how the model's strided convolutions
and 2×2 max pools are differentiated, and the XLA options the train step compiles with.

Two layer operations have a second implementation, written because XLA:CPU lowers their
gradients slowly (docs/bench.md):

- `jaxinpaint.layers.fast_conv.conv_general_dilated`: the input gradient of a strided
  convolution as S² stride-1 convolutions instead of one transposed (`lhs_dilation`) convolution
  (the discriminators' last layers: 52 instead of 2141 ms for 8×8²×256→512 on this CPU);
- `jaxinpaint.layers.fast_pool.max_pool_2x2`: the max pool's gradient elementwise instead of
  XLA's `select-and-scatter` (167 instead of 981 ms for 12×256²×64).

Both compute XLA's own forward pass and the same gradient (`tests/test_fast_conv.py`,
`tests/test_fast_pool.py`, `tests/test_backends.py`); only speed differs. `config.layer_ops`
picks them: "auto" (the default) takes `AUTO_LAYER_OPS`'s entry for the platform the step runs
on, or names one of `LAYER_OPS`. `bench/train_step.py --variants=shipped,xla,fast_conv,fast_pool`
measures them on the machine at hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
from jax import lax

from jaxinpaint.layers import fast_conv, fast_pool


def xla_max_pool_2x2(x: jax.Array) -> jax.Array:
    """`nn.max_pool` over 2×2 windows with stride 2: `reduce_window`, and XLA's gradient of it."""
    return nn.max_pool(x, (2, 2), strides=(2, 2))


@dataclasses.dataclass(frozen=True)
class LayerOps:
    """The implementations the models call for strided convolutions and 2×2 max pools."""

    name: str
    # `lax.conv_general_dilated`'s signature (what `flax.linen.Conv(conv_general_dilated=...)`
    # takes); the models' strided convs are the discriminators' and the partial encoder's.
    conv_general_dilated: Callable = lax.conv_general_dilated
    # NHWC, even H and W: the generator's encoder and VGG16.
    max_pool_2x2: Callable = xla_max_pool_2x2


LAYER_OPS = {
    "xla": LayerOps("xla"),
    "fast": LayerOps("fast", fast_conv.conv_general_dilated, fast_pool.max_pool_2x2),
    "fast_conv": LayerOps("fast_conv", conv_general_dilated=fast_conv.conv_general_dilated),
    "fast_pool": LayerOps("fast_pool", max_pool_2x2=fast_pool.max_pool_2x2),
}
XLA_OPS = LAYER_OPS["xla"]

# What `config.layer_ops="auto"` runs on each platform (`jax.Device.platform`), and why.
AUTO_LAYER_OPS = {
    # 2-core CPU, full config 256², batch 4: step 24.3 s instead of 41.1 s with XLA's own (the
    # discriminators 2.2 instead of 9.4 s, VGG16 5.5 instead of 8.9 s); the demo config's 171
    # instead of 184 ms (docs/bench.md, "The fixes are wired into training").
    "cpu": "fast",
    # H100, full config: the step measured at 24.9 ms (1.45x the PyTorch twin) ran with both.
    # XLA's own were not timed there yet: `bash bench/gpu_round.sh fp32` decides.
    "gpu": "fast",
}
# Platforms not listed (TPU): not measured; XLA's own lowering, which needs no custom gradient.
AUTO_OTHER = "xla"


def layer_ops(choice: str, platform: str) -> LayerOps:
    """The `LayerOps` that `config.layer_ops = choice` means on `platform` ("cpu", "gpu", "tpu")."""
    if choice == "auto":
        choice = AUTO_LAYER_OPS.get(platform, AUTO_OTHER)
    if choice not in LAYER_OPS:
        raise ValueError(
            f"config.layer_ops must be 'auto' or one of {list(LAYER_OPS)}, got {choice!r}"
        )
    return LAYER_OPS[choice]


# XLA:CPU runs convolutions through YNNPACK by default; its Eigen path is faster for this model:
# 2.6x on the kernel gradients of training (1419 vs 539 ms for 4x256²x64->64 3x3,
# bench/conv_grad.py), 1.7x on the generator's deep 16²x1024->1024 convs (47 vs 27 ms), ~2 % on
# the whole 256² generator forward (844 vs 861 ms), and quicker to compile.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def compiler_options(platform: str | None = None) -> dict | None:
    """The options the train step and the generator compile with on `platform` (default: JAX's
    default backend)."""
    return CPU_COMPILER_OPTIONS if (platform or jax.default_backend()) == "cpu" else None


def platform_of(mesh: jax.sharding.Mesh) -> str:
    """The platform of a mesh's devices ("cpu", "gpu", "tpu")."""
    return mesh.devices.flat[0].platform
