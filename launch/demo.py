"""The README's first command: run every stage that exists on embedded defaults, on the CPU.

    make demo          # = .venv/bin/python launch/demo.py --out=runs/demo

Stages are added here as they land; each prints where its results are.
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/demo", "Folder for every result of the demo.")


def stage_partial_conv(out_dir: str) -> str:
    """Partial convolution over the astronaut photo with a hole: holes shrink layer by layer."""
    import jax
    from skimage import data

    from jaxinpaint.layers import PartialConv2d

    image = data.astronaut()[None].astype(np.float32) / 255.0
    mask = np.ones_like(image)
    mask[:, 100:300, 150:350] = 0.0
    x, m = image, mask
    lines = []
    for i in range(4):
        layer = PartialConv2d(16, kernel_size=(5, 5), strides=2)
        params = layer.init(jax.random.key(i), x, m)
        x, m = layer.apply(params, x, m)
        lines.append(
            f"layer {i + 1}: {x.shape[1]}x{x.shape[2]}, hole fraction {1 - float(m.mean()):.3f}"
        )
    path = os.path.join(out_dir, "partial_conv.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return path


STAGES = [("partial convolution", stage_partial_conv)]


def main(argv):
    del argv
    os.makedirs(FLAGS.out, exist_ok=True)
    for name, stage in STAGES:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        result = stage(FLAGS.out)
        print(f"== {name}: done in {time.perf_counter() - start:.1f}s -> {result}", flush=True)
    print(f"demo results are in {os.path.abspath(FLAGS.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
