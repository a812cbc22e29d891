r"""Micro-benchmark of a 3×3 conv's forward, input gradient and kernel gradient: XLA vs PyTorch.

    python bench/conv_grad.py [--repeats=5] [--shape=4,256,256,64,64]

The issue measured XLA:CPU's kernel gradient at about 4× PyTorch's. This script times, on the
same float32 data, alternating all variants inside each repeat (medians; the machine is shared):

- `torch fwd / dx / dw`: `F.conv2d` on channels_last tensors and `torch.nn.grad.conv2d_*`;
- `xla fwd / dx / dw`: `lax.conv_general_dilated` and its transposes from `jax.vjp`;
- `xla dw nchw`: the same kernel gradient with NCHW/OIHW dimension numbers;
- `xla dw shift-dot`: Σ over the kh·kw taps of one `dot_general` of a shifted input slice
  with the output gradient (memory-bound: slower than XLA's own);
- `xla dw flat-dot`: the same, with the taps taken as contiguous slices of the flattened padded
  image (garbage columns cancelled by zero-padding the output gradient);
- `xla dw bf16`: the default kernel gradient on bfloat16 inputs and output.

Each variant's relative error against `xla dw` is printed beside its time.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from jax import lax

from jaxinpaint.layers.fast_conv import strided_input_grad

DN = ("NHWC", "HWIO", "NHWC")
Padding = str | Sequence[tuple[int, int]]


def _pads(size: int, k: int, stride: int, dilation: int, padding) -> tuple[int, int]:
    """The (lo, hi) padding XLA uses for one spatial dim ("SAME" pads the extra pixel high)."""
    if not isinstance(padding, str):
        return tuple(padding)
    if padding.upper() == "VALID":
        return 0, 0
    if padding.upper() != "SAME":
        raise ValueError(f"padding must be 'SAME', 'VALID' or explicit pairs, got {padding!r}")
    effective = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _padded(x, kernel_size, strides, padding, dilation):
    pads = [
        _pads(
            x.shape[1 + i],
            kernel_size[i],
            strides[i],
            dilation[i],
            padding if isinstance(padding, str) else padding[i],
        )
        for i in range(2)
    ]
    return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def kernel_grad_shift_dot(
    x: jax.Array,
    g: jax.Array,
    kernel_size: Sequence[int],
    strides: Sequence[int] = (1, 1),
    padding: Padding = "SAME",
    dilation: Sequence[int] = (1, 1),
) -> jax.Array:
    """HWIO kernel gradient of `conv(x, W)` for output gradient `g`, as kh·kw matmuls."""
    kh, kw = kernel_size
    (sh, sw), (dh, dw) = strides, dilation
    xp = _padded(x, kernel_size, strides, padding, dilation)
    n, ho, wo, _ = g.shape
    cin = x.shape[-1]
    taps = []
    for dy in range(kh):
        row = []
        for dx in range(kw):
            start = (0, dy * dh, dx * dw, 0)
            limit = (n, dy * dh + (ho - 1) * sh + 1, dx * dw + (wo - 1) * sw + 1, cin)
            xs = lax.slice(xp, start, limit, (1, sh, sw, 1))
            row.append(
                lax.dot_general(
                    xs,
                    g,
                    (((0, 1, 2), (0, 1, 2)), ((), ())),
                    preferred_element_type=jnp.float32,
                )
            )
        taps.append(jnp.stack(row))
    return jnp.stack(taps).astype(x.dtype)


def kernel_grad_flat_dot(
    x: jax.Array,
    g: jax.Array,
    kernel_size: Sequence[int],
    padding: Padding = "SAME",
    dilation: Sequence[int] = (1, 1),
) -> jax.Array:
    """Stride-1 kernel gradient with each tap a contiguous slice of the flattened padded image.

    Row-major `[Hp·Wp]` flattening turns the 2-D shift `(dy, dx)` into one offset; output positions
    in the `Wp − W` padding columns pick up wrapped-around pixels, which a zero-padded `g` cancels.
    """
    kh, kw = kernel_size
    dh, dw = dilation
    xp = _padded(x, kernel_size, (1, 1), padding, dilation)
    n, hp, wp, cin = xp.shape
    _, ho, wo, cout = g.shape
    extra = (kw - 1) * dw  # the last tap's slice runs this far past the end
    xf = jnp.pad(xp.reshape(n, hp * wp, cin), ((0, 0), (0, extra), (0, 0)))
    gf = jnp.pad(g, ((0, 0), (0, 0), (0, wp - wo), (0, 0))).reshape(n, ho * wp, cout)
    taps = []
    for dy in range(kh):
        for dx in range(kw):
            off = dy * dh * wp + dx * dw
            xs = lax.slice_in_dim(xf, off, off + ho * wp, axis=1)
            taps.append(
                lax.dot_general(
                    xs, gf, (((0, 1), (0, 1)), ((), ())), preferred_element_type=jnp.float32
                )
            )
    return jnp.stack(taps).reshape(kh, kw, cin, cout).astype(x.dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", default="4,256,256,64,64", help="N,H,W,Cin,Cout")
    parser.add_argument("--kernel", type=int, default=3, help="square kernel size")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated variant names to run")
    parser.add_argument(
        "--ynn-off", action="store_true", help="compile the XLA variants with YNNPACK fusions off"
    )
    args = parser.parse_args(argv)
    n, h, w, cin, cout = (int(v) for v in args.shape.split(","))
    ks, s = args.kernel, args.stride
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    jit = functools.partial(
        jax.jit,
        compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""} if args.ynn_off else None,
    )

    def conv(x, k, dn=DN):
        return lax.conv_general_dilated(x, k, (s, s), "SAME", dimension_numbers=dn)

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, h, w, cin), np.float32)
    k_np = (rng.standard_normal((ks, ks, cin, cout)) / np.sqrt(ks * ks * cin)).astype(np.float32)
    g_np = rng.standard_normal((n, -(-h // s), -(-w // s), cout), np.float32)
    x, k, g = jnp.asarray(x_np), jnp.asarray(k_np), jnp.asarray(g_np)

    def nhwc_to_cl(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    xt, gt = nhwc_to_cl(x_np), nhwc_to_cl(g_np)
    kt = torch.from_numpy(k_np).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    tkw = dict(stride=s, padding=ks // 2)

    fwd = jit(conv)
    dx = jit(lambda x, k, g: jax.vjp(lambda x: conv(x, k), x)[1](g)[0])
    dw = jit(lambda x, k, g: jax.vjp(lambda k: conv(x, k), k)[1](g)[0])
    nchw = ("NCHW", "OIHW", "NCHW")
    x_c, g_c = jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(g, (0, 3, 1, 2))
    k_c = jnp.transpose(k, (3, 2, 0, 1))
    dw_nchw = jit(lambda x, k, g: jax.vjp(lambda k: conv(x, k, nchw), k)[1](g)[0])
    shift = jit(lambda x, g: kernel_grad_shift_dot(x, g, (ks, ks), (s, s)))
    flat = jit(lambda x, g: kernel_grad_flat_dot(x, g, (ks, ks)))
    pads = tuple(_pads(size, ks, s, 1, "SAME") for size in (h, w))
    phase = jit(lambda k, g: strided_input_grad(g, k, (h, w), (s, s), pads))
    xb, kb, gb = (a.astype(jnp.bfloat16) for a in (x, k, g))
    variants = {
        "torch fwd": lambda: F.conv2d(xt, kt, **tkw),
        "torch dx": lambda: torch.nn.grad.conv2d_input(xt.shape, kt, gt, **tkw),
        "torch dw": lambda: torch.nn.grad.conv2d_weight(xt, kt.shape, gt, **tkw),
        "xla fwd": lambda: fwd(x, k),
        "xla dx": lambda: dx(x, k, g),
        "xla dw": lambda: dw(x, k, g),
        "xla dw nchw": lambda: jnp.transpose(dw_nchw(x_c, k_c, g_c), (2, 3, 1, 0)),
        "xla dw shift-dot": lambda: shift(x, g),
        "xla dw bf16": lambda: dw(xb, kb, gb),
    }
    if s == 1:
        variants["xla dw flat-dot"] = lambda: flat(x, g)
    else:
        variants["xla dx phase"] = lambda: phase(k, g)
    if args.only:
        keep = {v.strip() for v in args.only.split(",")} | {"xla dw", "xla dx"}
        variants = {name: fn for name, fn in variants.items() if name in keep}

    def run(fn):
        out = fn()
        if isinstance(out, torch.Tensor):
            return out
        return jax.block_until_ready(out)

    with torch.inference_mode():
        references = {
            kind: np.asarray(run(variants[f"xla {kind}"]), np.float64) for kind in ("dx", "dw")
        }
        errors = {}
        for name, fn in variants.items():
            out = run(fn)  # compile / warm-up
            kind = name.split()[1]
            if kind in references:
                if name.startswith("torch"):
                    out = out.permute(*((2, 3, 1, 0) if kind == "dw" else (0, 2, 3, 1))).numpy()
                ref = references[kind]
                errors[name] = np.linalg.norm(np.asarray(out, np.float64) - ref) / np.linalg.norm(
                    ref
                )
        times = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                run(fn)
                times[name].append(time.perf_counter() - start)

    print(
        f"{ks}x{ks} stride-{s} conv {n}x{h}x{w}x{cin}->{cout} float32, "
        f"YNNPACK {'off' if args.ynn_off else 'default'}, median of {args.repeats} (ms)"
    )
    for name, ts in times.items():
        err = f"  rel err {errors[name]:.1e}" if name in errors else ""
        print(f"{name:<20}{statistics.median(ts) * 1e3:>9.1f}{err}")


if __name__ == "__main__":
    main()
