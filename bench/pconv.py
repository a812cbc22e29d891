"""Forward+backward time of the jitted partial convolution against a plain convolution.

    python bench/pconv.py [--repeats=10] [--json=bench/results/pconv.json]

Both sides compute the value and the gradient of `sum(y * g)` with respect to the input, kernel
and bias, under `jax.jit`, on the same shapes. The figure is the median of `--repeats` timed runs
after warm-up, with the two sides alternating. The last line is `pconv_over_conv=<worst ratio>`;
the goal is <= 1.10.
"""

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import RESULTS, write_json

from jaxinpaint.layers import partial_conv

# (name, batch, height, width, cin, cout, kernel, stride)
SHAPES = [
    ("256x256x64->64 k3", 4, 256, 256, 64, 64, 3, 1),
    ("16x16x512->512 k3", 4, 16, 16, 512, 512, 3, 1),
    ("128x128x128->128 k3", 4, 128, 128, 128, 128, 3, 1),
    ("256x256x6->64 k7 s2", 4, 256, 256, 6, 64, 7, 2),
]


def plain_conv(x, mask, kernel, bias, stride):
    del mask
    y = jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + bias


def pconv(x, mask, kernel, bias, stride):
    return partial_conv(x, mask, kernel, bias, strides=stride)[0]


def fwd_bwd(layer, stride):
    def loss(x, kernel, bias, mask, cot):
        return jnp.sum(layer(x, mask, kernel, bias, stride) * cot)

    # value_and_grad: the loss value needs the forward output (jax.grad alone lets XLA drop the
    # forward convolution, since the gradient of a loss linear in y does not depend on y).
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def time_pair(fn_a, fn_b, args, repeats):
    """Median seconds of each function; runs alternate so that load from other processes on the
    machine falls on both sides alike."""
    for fn in (fn_a, fn_b):
        jax.block_until_ready(fn(*args))  # compile
        jax.block_until_ready(fn(*args))  # warm-up
    times = ([], [])
    for _ in range(repeats):
        for fn, bucket in zip((fn_a, fn_b), times, strict=True):
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default=str(RESULTS / "pconv.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rows = []
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, repeats={args.repeats}")
    print(f"{'shape':<24}{'conv ms':>10}{'pconv ms':>10}{'ratio':>8}")
    for name, n, h, w, cin, cout, k, stride in SHAPES:
        x = rng.standard_normal((n, h, w, cin), np.float32)
        mask = (rng.uniform(size=x.shape) > 0.3).astype(np.float32)
        kernel = rng.standard_normal((k, k, cin, cout), np.float32) / np.sqrt(k * k * cin)
        bias = rng.standard_normal(cout, np.float32)
        out_hw = (-(-h // stride), -(-w // stride))
        cot = rng.standard_normal((n, *out_hw, cout), np.float32)
        inputs = [jnp.asarray(a) for a in (x, kernel, bias, mask, cot)]
        conv_s, pconv_s = time_pair(
            fwd_bwd(plain_conv, stride), fwd_bwd(pconv, stride), inputs, args.repeats
        )
        rows.append(dict(shape=name, conv_ms=conv_s * 1e3, pconv_ms=pconv_s * 1e3))
        rows[-1]["ratio"] = pconv_s / conv_s
        print(f"{name:<24}{conv_s * 1e3:>10.1f}{pconv_s * 1e3:>10.1f}{rows[-1]['ratio']:>8.3f}")

    worst = max(r["ratio"] for r in rows)
    result = dict(
        benchmark="pconv_fwd_bwd",
        device=jax.devices()[0].device_kind,
        devices=jax.device_count(),
        jax=jax.__version__,
        machine=platform.machine(),
        cpus=os.cpu_count(),
        repeats=args.repeats,
        rows=rows,
        pconv_over_conv=worst,
    )
    write_json(args.json, result)
    print(f"pconv_over_conv={worst:.3f}")


if __name__ == "__main__":
    main()
