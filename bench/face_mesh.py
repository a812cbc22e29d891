"""Time of the face mesh in Flax (jaxinpaint/models/face_mesh.py) per batch, and of the TFLite
model it was read from.

    python bench/face_mesh.py [--batches=1,8,32] [--repeats=5] [--json=bench/results/face_mesh.json]

For each batch size: the jitted forward pass, and the forward pass with the gradient of the points
with respect to the input (what the structure loss costs the generator's step, per image pair
half), on JAX's default device. The TFLite row is TensorFlow's interpreter (XNNPACK, one image a
call, as `data_pipeline` runs the model through OpenCV) looped over the batch. Medians of
`--repeats` runs after warm-up, in milliseconds per batch and per image.
"""

import argparse
import os
import platform
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import RESULTS, timed, write_json

from jaxinpaint.models import face_mesh


def _tflite_forward():
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's notice that LiteRT replaces it
        interpreter = tf.lite.Interpreter(model_path=face_mesh.MESH_PATH)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]

    def run(windows):
        for window in windows:
            interpreter.set_tensor(index, window[None])
            interpreter.invoke()

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(RESULTS / "face_mesh.json"))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    params = jax.device_put(face_mesh.load_face_mesh_params())
    net = face_mesh.FaceMeshNet()
    forward = jax.jit(net.apply)

    def points_sum(img):
        return jnp.sum(net.apply(params, img)[0][..., :2])

    with_grad = jax.jit(jax.value_and_grad(points_sum))
    tflite = _tflite_forward()
    device = jax.devices()[0].device_kind
    print(f"device: {device}, {os.cpu_count()} cpus, repeats={args.repeats}")
    header = ("batch", "flax fwd ms", "/image", "fwd+grad ms", "/image", "tflite ms", "/image")
    print("".join(f"{h:>13}" for h in header))
    rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        size = face_mesh.INPUT_SIZE
        host = rng.random((batch, size, size, 3), dtype=np.float32)
        img = jax.device_put(host)
        fwd = timed(lambda img=img: jax.block_until_ready(forward(params, img)), args.repeats)
        grad = timed(lambda img=img: jax.block_until_ready(with_grad(img)), args.repeats)
        lite = timed(lambda host=host: tflite(host), args.repeats)
        rows.append(
            dict(batch=batch, flax_forward_ms=fwd, flax_forward_grad_ms=grad, tflite_ms=lite)
        )
        values = (fwd, fwd / batch, grad, grad / batch, lite, lite / batch)
        print(f"{batch:>13}" + "".join(f"{v:>13.2f}" for v in values))
    write_json(
        args.json,
        dict(
            benchmark="face_mesh",
            device=device,
            backend=jax.default_backend(),
            jax=jax.__version__,
            machine=platform.machine(),
            cpus=os.cpu_count(),
            repeats=args.repeats,
            rows=rows,
        ),
    )


if __name__ == "__main__":
    main()
