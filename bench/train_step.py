r"""Images/s of the inpainting GAN's train step in JAX and in its PyTorch twin, on this CPU.

    python bench/train_step.py                          # full config, 256², batch 4, 5 repeats
    python bench/train_step.py --size=64 --repeats=2    # quick smoke run (a few minutes)
    python bench/train_step.py --config=configs/demo.py --variants=shipped
    python bench/train_step.py --variants=shipped --batches=4,8,16,32   # GPU: batch sweep, MFU

Both sides run the same architecture (`bench/torch_twin.py` reads the same config) on the same
uint8 batch. Timed runs alternate between the sides so that load from other processes on a
shared machine falls on all alike; each figure is the median of `--repeats` runs after a
warm-up. Besides the whole step it times its parts on every side (generator forward+backward,
both discriminators forward+backward, VGG16 forward+backward on the generator's images); "rest"
is the step minus the parts (losses, crops, optimizer updates, glue). The JAX compile time is
the `lower` and `compile` time of the jitted step.

JAX variants (`--variants`): `shipped` is `jaxinpaint.train.Trainer.train_step` exactly as
training runs it (`config.layer_ops="auto"`: `jaxinpaint/backends.py`'s pick for this
platform); `xla`, `fast`, `fast_conv` and `fast_pool` set `config.layer_ops` to that name (how
strided convs and 2×2 max pools are differentiated); `ynn_on` compiles with XLA:CPU's YNNPACK
convolutions, which the Trainer turns off on the CPU (docs/bench.md).
Model FLOP utilisation: the shipped step's FLOPs come from XLA's cost analysis of the compiled
step; achieved TFLOP/s = FLOPs ÷ median step time; MFU = achieved ÷ the device's dense peak for
the step's precision (`PEAK_TFLOPS`, vendors' data sheets; on a CPU a measured float32 matmul;
or `--peak_tflops`). `--batches=4,8,16` also times the shipped step alone at each global batch.
Results go to `--json` (written atomically); the last line printed is
`jax_over_torch=<shipped JAX images/s ÷ PyTorch images/s> mfu=<shipped step's MFU>`.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time

import bench_common
import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch_twin
from bench_common import RESULTS, ROOT, write_json

from jaxinpaint.gan import prepare_batch
from jaxinpaint.train import Trainer, make_mesh
from jaxinpaint.vgg import load_vgg16_params


def load_config(path: str, size: int | None, batch: int | None):
    """`get_config()` of a config file, with the image size and batch overridden if given."""
    config = bench_common.load_config(path)
    if size is not None:
        levels = len(config.gen.widths)
        if size % 2 ** (levels - 1):
            raise SystemExit(f"error: --size={size} must divide by 2**{levels - 1} for this config")
        config.image_size = size
        config.disc.local_size = min(config.disc.local_size, size // 2)
    if batch is not None:
        config.global_batch_size = batch
    return config


def make_batch(batch: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images with one rectangular hole each (NHWC, like the input pipeline)."""
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    mask = np.zeros((batch, size, size, 1), np.uint8)
    for m in mask:
        h, w = rng.integers(size // 4, size // 2, 2)
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        m[top : top + h, left : left + w] = 255
    occluded = np.where(mask > 0, rng.integers(0, 256, original.shape, dtype=np.uint8), original)
    return {"occluded": occluded, "original": original, "mask": mask}


# ---- JAX side ---------------------------------------------------------------------------------


# name → (config.layer_ops, the Trainer's XLA compiler options: None for this platform's).
VARIANTS = {
    "shipped": ("auto", None),  # Trainer.train_step exactly as training runs it
    "xla": ("xla", None),  # XLA's own gradients of strided convs and max pools
    "fast": ("fast", None),  # fast_conv's and fast_pool's
    "fast_conv": ("fast_conv", None),
    "fast_pool": ("fast_pool", None),
    # XLA:CPU's default YNNPACK convolutions, which the Trainer turns off there (bench/conv_grad.py)
    "ynn_on": ("auto", {}),
}


def jax_side(config, batch_np, variant: str):
    """Compiled step and parts of the JAX model: `(name → zero-arg runner)`, compile seconds."""
    layer_ops, compiler_options = VARIANTS[variant]
    config = config.copy_and_resolve_references()
    config.layer_ops = layer_ops
    trainer = Trainer(config, make_mesh(config.global_batch_size), compiler_options)
    gan = trainer.gan
    state = trainer.init(jax.random.key(config.seed))
    frozen = trainer.frozen_params
    vgg_params = frozen["vgg"]
    batch = trainer.global_batch(batch_np)
    rng = jax.random.key(1)
    jit = functools.partial(jax.jit, compiler_options=trainer.compiler_options)
    occluded, target, hole = prepare_batch(batch)
    gen_params = jax.tree_util.tree_map(jnp.copy, state.gen_params)  # the step donates `state`
    disc_params = jax.tree_util.tree_map(jnp.copy, state.disc_params)

    def gen_fwd_bwd(params, occluded, hole):
        # Images as arguments, not closed-over constants, which XLA would constant-fold.
        def loss(p):
            pred, comp = gan.generator.apply(
                {"params": p}, occluded, hole, train=True, rngs={"dropout": rng}
            )
            return jnp.mean(pred) + jnp.mean(comp)

        return jax.value_and_grad(loss)(params)

    pair = jnp.concatenate([target, target])  # the discriminators see [fake, real]
    images = {"global": pair, "local": pair[:, : config.disc.local_size, : config.disc.local_size]}

    def disc_fwd_bwd(params, imgs):
        def loss(p, x):
            return sum(
                jnp.mean(d.apply({"params": p[n]}, x[n])) for n, d in gan.discriminators.items()
            )

        return jax.value_and_grad(loss, argnums=(0, 1))(params, imgs)

    def vgg_fwd_bwd(x, tgt):
        # As in the step: one VGG pass over [pred, composite, target], no gradient for target.
        def loss(x):
            feats = gan.vgg.apply(vgg_params, jnp.concatenate([x, jax.lax.stop_gradient(tgt)]))
            return sum(jnp.mean(f) for f in feats)

        return jax.value_and_grad(loss)(x)

    start = time.perf_counter()
    lowered = trainer.train_step.lower(state, batch, rng, frozen)
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    step = lowered.compile()
    compile_s = time.perf_counter() - start
    flops = compiled_flops(step)
    gen_c = jit(gen_fwd_bwd).lower(gen_params, occluded, hole).compile()
    disc_c = jit(disc_fwd_bwd).lower(disc_params, images).compile()
    # A step that reads no VGG features runs no VGG16 (`gan.uses_vgg`): that part is empty.
    vgg_c = jit(vgg_fwd_bwd).lower(pair, target).compile() if gan.uses_vgg else None

    holder = {"state": state}

    def run_step():
        holder["state"], metrics = step(holder["state"], batch, rng, frozen)
        jax.block_until_ready(metrics)

    parts = {
        "step": run_step,
        "generator": lambda: jax.block_until_ready(gen_c(gen_params, occluded, hole)),
        "discriminators": lambda: jax.block_until_ready(disc_c(disc_params, images)),
        "vgg": (lambda: jax.block_until_ready(vgg_c(pair, target))) if vgg_c else lambda: None,
    }
    info = {"lower_s": lower_s, "compile_s": compile_s, "flops": flops}
    return parts, info | {"layer_ops": gan.ops.name, "xla_options": trainer.compiler_options}


# ---- model FLOP utilisation --------------------------------------------------------------------

# Dense peak TFLOP/s of one device, from the vendors' data sheets, for the precision the step's
# convolutions and matmuls run in: float32 runs as TF32 on NVIDIA GPUs (XLA's default) and as
# bfloat16 passes on TPUs. Matched against `device_kind` by substring, most specific first.
PEAK_TFLOPS = {
    "H200": {"float32": 494.7, "bfloat16": 989.4},
    "H100": {"float32": 494.7, "bfloat16": 989.4},  # SXM
    "A100": {"float32": 156.0, "bfloat16": 312.0},
    "TPU v6 lite": {"float32": 918.0, "bfloat16": 918.0},  # v6e
    "TPU v5p": {"float32": 459.0, "bfloat16": 459.0},
    "TPU v5 lite": {"float32": 197.0, "bfloat16": 197.0},  # v5e
    "TPU v4": {"float32": 275.0, "bfloat16": 275.0},
}


def compiled_flops(compiled) -> float:
    """The FLOPs of one call of a compiled XLA program, by XLA's cost analysis."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax: one dict per program
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


def measured_peak_tflops(dtype=jnp.float32, n: int = 2048, repeats: int = 5) -> float:
    """This device's TFLOP/s on a large jitted matmul: the reference where no data sheet
    applies (CPUs)."""
    a = jnp.ones((n, n), dtype)
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e12


def device_peak_tflops(dtype: str = "float32") -> tuple[float, str]:
    """(peak TFLOP/s of `jax.devices()[0]` for `dtype`, where the figure comes from)."""
    kind = jax.devices()[0].device_kind
    for name, peaks in PEAK_TFLOPS.items():
        if name.lower() in kind.lower():
            return peaks[dtype], f"data sheet, {name} {dtype} dense"
    return measured_peak_tflops(jnp.dtype(dtype)), f"measured: {dtype} matmul 2048x2048"


def sweep_batches(config, batches, repeats: int) -> list[dict]:
    """Images/s of the shipped step at each global batch size (the JAX side only)."""
    rows = []
    for batch in batches:
        config.global_batch_size = batch
        parts, info = jax_side(config, make_batch(batch, config.image_size, config.seed), "shipped")
        seconds = bench_common.timed(parts["step"], repeats, warmup=1) / 1e3
        rows.append(
            {"batch": batch, "step_ms": seconds * 1e3, "images_per_s": batch / seconds,
             "tflop_per_step": info["flops"] / 1e12,
             "tflops": info["flops"] / seconds / 1e12}
        )  # fmt: skip
    return rows


# ---- PyTorch side -----------------------------------------------------------------------------


def torch_side(config, batch_np, vgg_params, device: str, bf16: bool = False):
    """The twin's step and parts: `name → zero-arg runner` (each waits for the GPU, if any);
    with `bf16`, under `torch.autocast` to bfloat16 (the twin of `compute_dtype="bfloat16"`)."""
    twin = torch_twin.TwinGAN(config, vgg_params, device=device)
    occluded, target, hole = twin.prepare_batch(batch_np)
    local = config.disc.local_size
    pair = torch.cat([target, target]).requires_grad_(True)
    images = {"global": pair, "local": pair[:, :, :local, :local]}

    def generator():
        twin.generator.train()
        pred, comp = twin.generator(occluded, hole)
        loss = pred.mean() + comp.mean()
        torch.autograd.grad(loss, twin.gen_params)

    def discriminators():
        loss = sum(d(images[n]).mean() for n, d in twin.discriminators.items())
        torch.autograd.grad(loss, [*twin.disc_params, pair])

    def vgg():
        feats = twin.vgg(pair)
        with torch.no_grad():
            twin.vgg(target)
        torch.autograd.grad(sum(f.mean() for f in feats), pair)

    def synced(fn):
        def run():
            with torch.autocast(twin.device.type, dtype=torch.bfloat16, enabled=bf16):
                fn()
            if twin.device.type == "cuda":
                torch.cuda.synchronize(twin.device)

        return run

    parts = {
        "step": lambda: twin.train_step(batch_np),
        "generator": generator,
        "discriminators": discriminators,
        "vgg": vgg if twin.uses_vgg else lambda: None,  # as the JAX side: none in the step
    }
    return {name: synced(fn) for name, fn in parts.items()}


# ---- timing -----------------------------------------------------------------------------------


def interleaved_medians(sides: dict[str, dict], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds of every part on every side; sides alternate inside each repeat."""
    names = list(next(iter(sides.values())))
    for parts in sides.values():  # warm-up (and the first, compiling call of the JAX parts)
        for fn in parts.values():
            fn()
    times = {side: {n: [] for n in names} for side in sides}
    for _ in range(repeats):
        for name in names:
            for side, parts in sides.items():
                start = time.perf_counter()
                parts[name]()
                times[side][name].append(time.perf_counter() - start)
    return {s: {n: statistics.median(t) for n, t in ts.items()} for s, ts in times.items()}


PARTS = ("step", "generator", "discriminators", "vgg", "rest")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "full.py"))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: config's)")
    parser.add_argument("--size", type=int, default=None, help="image side (default: config's)")
    parser.add_argument(
        "--variants",
        default="shipped,xla",
        help=f"comma-separated JAX variants to time, from {','.join(VARIANTS)}",
    )
    parser.add_argument(
        "--torch_device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="the twin's device (default: cuda when available)",
    )
    parser.add_argument(
        "--batches",
        default="",
        help="also time the shipped JAX step at these global batch sizes, e.g. 4,8,16,32 "
        "(images/s, TFLOP/s and MFU per batch)",
    )
    parser.add_argument(
        "--compute_dtype",
        choices=("float32", "bfloat16"),
        default=None,
        help="config.compute_dtype for JAX, and torch.autocast to bfloat16 for the twin "
        "(default: the config's)",
    )
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="the device's peak for MFU (default: data sheet by device kind; CPUs: measured)",
    )
    parser.add_argument("--json", default=str(RESULTS / "train_step.json"))
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        raise SystemExit(f"error: --batches must be integers, got {args.batches!r}") from None
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats must be >= 1, got {args.repeats}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or "shipped" not in variants:
        raise SystemExit(
            f"error: --variants must include 'shipped' and name only {', '.join(VARIANTS)}; "
            f"got {args.variants!r}"
        )

    config = load_config(args.config, args.size, args.batch)
    if args.compute_dtype:
        config.compute_dtype = args.compute_dtype
    dtype = config.get("compute_dtype", "float32")
    batch_size, size = config.global_batch_size, config.image_size
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    batch_np = make_batch(batch_size, size, seed=config.seed)

    sides, compile_info = {}, {}
    for variant in variants:
        sides[f"jax_{variant}"], compile_info[f"jax_{variant}"] = jax_side(
            config, batch_np, variant
        )
    if args.torch_device.startswith("cuda"):
        # TF32 convolutions and matmuls, as XLA uses for float32 on this GPU by default.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    sides["torch"] = torch_side(
        config, batch_np, load_vgg16_params()["params"], args.torch_device, dtype == "bfloat16"
    )
    medians = interleaved_medians(sides, args.repeats)
    for side in medians.values():
        side["rest"] = side["step"] - side["generator"] - side["discriminators"] - side["vgg"]
    ips = {side: batch_size / m["step"] for side, m in medians.items()}
    ratios = {f"{s}_over_torch": ips[s] / ips["torch"] for s in sides if s != "torch"}
    if args.peak_tflops:
        peak, peak_source = args.peak_tflops, "--peak_tflops"
    else:
        peak, peak_source = device_peak_tflops(dtype)
    flops = compile_info["jax_shipped"]["flops"]
    achieved = flops / medians["jax_shipped"]["step"] / 1e12
    sweep = sweep_batches(config, batches, args.repeats) if batches else []
    for row in sweep:
        row["mfu"] = row["tflops"] / peak

    print(
        f"device: {jax.devices()[0].device_kind} (torch: {args.torch_device}), {threads} threads, "
        f"torch {torch.__version__}, "
        f"jax {jax.__version__}; {dtype}, batch {batch_size}, {size}x{size}, median of "
        f"{args.repeats} "
        "(sides interleaved)"
    )
    for name, info in compile_info.items():
        print(
            f"{name} (layer_ops {info['layer_ops']}): lower {info['lower_s']:.1f} s, "
            f"compile {info['compile_s']:.1f} s"
        )
    print(f"{'ms (fwd+bwd)':<16}" + "".join(f"{s:>16}" for s in medians))
    for part in PARTS:
        print(f"{part:<16}" + "".join(f"{m[part] * 1e3:>16.1f}" for m in medians.values()))
    print(f"{'images/s':<16}" + "".join(f"{v:>16.3f}" for v in ips.values()))
    print(
        f"shipped step: {flops / 1e12:.3f} TFLOP (XLA cost analysis), {achieved:.3f} TFLOP/s, "
        f"MFU {achieved / peak:.1%} of {peak:.3g} TFLOP/s ({peak_source})"
    )
    if sweep:
        print(f"{'batch':>6}{'step ms':>12}{'images/s':>12}{'TFLOP/s':>12}{'MFU':>8}")
        for row in sweep:
            print(
                f"{row['batch']:>6}{row['step_ms']:>12.1f}{row['images_per_s']:>12.2f}"
                f"{row['tflops']:>12.3f}{row['mfu']:>8.1%}"
            )

    write_json(
        args.json,
        {
            "benchmark": "train_step",
            "config": os.path.relpath(args.config, ROOT),
            "image_size": size,
            "batch": batch_size,
            "compute_dtype": dtype,
            "repeats": args.repeats,
            "device": jax.devices()[0].device_kind,
            "torch_device": args.torch_device,
            "machine": platform.machine(),
            "threads": threads,
            "jax": jax.__version__,
            "torch": torch.__version__,
            "jax_variants": {
                side: {"layer_ops": info["layer_ops"], "xla_options": info["xla_options"]}
                for side, info in compile_info.items()
            },
            "jax_compile_s": {
                side: {k: info[k] for k in ("lower_s", "compile_s", "flops")}
                for side, info in compile_info.items()
            },
            "median_ms": {s: {n: v * 1e3 for n, v in m.items()} for s, m in medians.items()},
            "images_per_s": ips,
            "step_tflop": flops / 1e12,
            "achieved_tflops": achieved,
            "peak_tflops": peak,
            "peak_source": peak_source,
            "mfu": achieved / peak,
            "batch_sweep": sweep,
            **ratios,
        },
    )
    for key, value in ratios.items():
        if key != "jax_shipped_over_torch":
            print(f"{key}={value:.3f}")
    # The last line is the step as training runs it.
    print(f"jax_over_torch={ratios['jax_shipped_over_torch']:.3f} mfu={achieved / peak:.4f}")


if __name__ == "__main__":
    main()
