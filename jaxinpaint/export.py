"""The generator as files that run without this code or JAX: ONNX (onnxruntime, any language) and
serialized StableHLO (`jax.export`: JAX, or any PJRT runtime, without our model code).

Both hold the weights and compute the same function as `Inpainter.inpaint_batch`'s composite:

    (occluded BxRxRx3 uint8, hole BxRxRx1 uint8 0/1) -> composite BxRxRx3 float32 in [0, 1]

where the composite keeps the known pixels and takes the generator's output in the hole.
StableHLO keeps the batch size open; the ONNX graph is written for one batch size (jax2onnx cannot
yet give the bilinear resize of the coarse fill a symbolic batch), 1 by default, which is what
reconstruction uses: one face at a time.

`to_int8_onnx` quantises that ONNX graph's convolutions to int8 (onnxruntime's static
quantisation, calibrated on training faces), for CPUs; the smooth fill and every other op stay
float32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint.gan import InpaintingGAN
from jaxinpaint.inference import Inpainter, float32_config

INPUT_NAMES = ("occluded", "hole")
OUTPUT_NAME = "composite"


def composite_fn(inpainter: Inpainter) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`(occluded uint8 BxRxRx3, hole uint8 BxRxRx1) -> composite float32`, the weights closed
    over (so an export carries them as constants)."""
    gan, params = InpaintingGAN(float32_config(inpainter.config)), inpainter.gen_params

    def composite(occluded, hole):
        batch = {"occluded": occluded, "original": occluded, "mask": hole}
        return gan.generate(params, batch)[1]

    return composite


def _specs(size: int, batch) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    return (
        jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8),
        jax.ShapeDtypeStruct((batch, size, size, 1), jnp.uint8),
    )


def to_stablehlo(inpainter: Inpainter) -> bytes:
    """The serialized `jax.export.Exported` of the composite, for any batch size; run it with
    `jax.export.deserialize(blob).call(occluded, hole)`."""
    (batch,) = jax.export.symbolic_shape("batch")
    exported = jax.export.export(jax.jit(composite_fn(inpainter)))(*_specs(inpainter.size, batch))
    return bytes(exported.serialize())


@contextlib.contextmanager
def _quiet_jax2onnx():
    """jax2onnx logs an ERROR for each of its optional plugins whose library (equinox, dm-pix)
    is not installed; none of them is needed for our model."""
    loggers = [logging.getLogger(name) for name in ("jax2onnx", "")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def to_onnx(inpainter: Inpainter, batch: int = 1, opset: int = 23) -> bytes:
    """The composite as a serialized ONNX model for `batch` faces at a time; inputs `occluded`
    and `hole` (uint8, NHWC), output `composite` (float32, NHWC)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    with _quiet_jax2onnx():
        from jax2onnx import to_onnx as convert

        model = convert(
            composite_fn(inpainter),
            list(_specs(inpainter.size, batch)),
            model_name="jaxinpaint_generator",
            opset=opset,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
        )
    return model.SerializeToString()


def sample_inputs(size: int, batch: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise faces with a hole of each kind the check should see: a block, a thin stroke, none."""
    rng = np.random.default_rng(seed)
    occluded = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    hole = np.zeros((batch, size, size, 1), np.uint8)
    for i in range(batch):
        kind = i % 3
        if kind == 0:
            hole[i, size // 4 : size // 2, size // 8 : 7 * size // 8] = 1
        elif kind == 1:
            hole[i, :, size // 2 : size // 2 + max(1, size // 32)] = 1
    return occluded, hole


def to_int8_onnx(
    onnx_path: str, calibration: Iterable[tuple[np.ndarray, np.ndarray]], per_channel: bool = True
) -> bytes:
    """The ONNX generator at `onnx_path` with its convolutions in int8 (QDQ: weights per output
    channel, activations per tensor), serialized. `calibration` yields (occluded, hole) batches
    of the graph's batch size, training faces as the model saw them: onnxruntime runs the float
    graph on them and keeps each activation's range (MinMax)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else dict(zip(INPUT_NAMES, batch, strict=True))

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "int8.onnx")
        quantize_static(
            onnx_path,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        with open(out, "rb") as f:
            return f.read()
