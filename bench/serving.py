"""Serving: one photo through the `reconstruct` command, the JAX path and the exported (ONNX) one.

    python bench/serving.py [--config=configs/full.py] [--inpainter=WORKDIR]
        [--detector=CHECKPOINT] [--repeats=5] [--workdir=bench/results/serve]

Without --inpainter the config's model is initialised and saved as a training workdir would
be (step 0, whole training state: the timing and memory are those of trained weights); without
--detector, the demo's CPU detector (configs/detector_demo.py) untrained, at the inpainter's size.
Both are exported with launch/export.py. Then, on the demo photo (the astronaut with sunglasses)
with the detector as the mask source:

- whole process of `launch/reconstruct.py`, wall seconds and peak RSS: the JAX path with a cold
  and then a warm compilation cache, and the ONNX path (`--exported`);
- per-photo latency inside one process (median of --repeats after a warm-up): JAX vs ONNX (the
  int8 generator when the export serves it, and then the float one too);
- peak RSS of loading the generator: the whole training state (as before generator-only
  loading) vs `Inpainter.from_workdir` (the generator's averaged weights alone).

Last line: `warm_s=<JAX warm> onnx_s=<ONNX> reconstruct_ms_jax=... reconstruct_ms_onnx=...`.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import RESULTS, ROOT, load_config, timed, write_json

PY = sys.executable


def run_process(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """Runs a command to its end; (wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def make_workdir(config_path: str, workdir: str) -> None:
    """The config's model at step 0, saved as launch/train.py saves it."""
    import jax

    from jaxinpaint.checkpointing import Checkpointer
    from jaxinpaint.gan import InpaintingGAN
    from jaxinpaint.inference import save_config

    config = load_config(config_path)
    state = jax.jit(InpaintingGAN(config).init)(jax.random.key(0))
    os.makedirs(workdir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=1)
    ckpt.save(state, data_position=0)
    ckpt.close()
    save_config(config, workdir)


def make_detector(size: int, path: str) -> None:
    from bench_common import untrained_detector

    import configs
    from detector import checkpoint

    config = configs.get("detector_demo")
    # below every untrained score (~1/20 by class, ~0.95 by occluder): the mask head always runs
    config.predict.score_thresh = 0.05
    model = untrained_detector(size).model
    checkpoint.save(path, model=model, optimizer=None, step=0, config=config, image_size=size)


LOAD_WHOLE_STATE = """
import jax, sys
from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.gan import InpaintingGAN
from jaxinpaint.inference import load_config
config = load_config(sys.argv[1])
like = jax.eval_shape(InpaintingGAN(config).init, jax.random.key(0))
ckpt = Checkpointer(sys.argv[1] + "/checkpoints", keep=1)
state, _ = ckpt.restore(like)
jax.block_until_ready(state)
ckpt.close()
"""
LOAD_GENERATOR = """
import jax, sys
from jaxinpaint.inference import Inpainter
jax.block_until_ready(Inpainter.from_workdir(sys.argv[1]).gen_params)
"""


def per_photo_ms(workdir, detector, exported, repeats) -> dict[str, float]:
    """Median ms of one `Reconstructor(photo)` call, JAX models vs the exported ones."""
    import numpy as np

    import serve
    from data_pipeline.compose import demo_photo
    from detector.predict import Detector
    from jaxinpaint.inference import Inpainter
    from jaxinpaint.reconstruct import Reconstructor

    photo, _ = demo_photo()
    models = serve.load(exported)
    inpainter = Inpainter.from_workdir(workdir)
    det = Detector.from_checkpoint(detector)
    paths = {
        "jax": Reconstructor(inpainter, det.detect, size=inpainter.size, mask_size=det.input_size),
        "onnx": Reconstructor(
            models.inpainter,
            models.detector.detect,
            size=models.size,
            mask_size=models.detector.input_size,
        ),
    }
    if models.int8:  # the export's int8 generator is served: the float one beside it
        float_ = serve.load(exported, int8=False)
        paths["onnx, float generator"] = Reconstructor(
            float_.inpainter,
            float_.detector.detect,
            size=float_.size,
            mask_size=float_.detector.input_size,
        )
    ms = {}
    for name, reconstructor in paths.items():
        # The warm-up call, checked: nothing found would mean nothing inpainted.
        assert reconstructor(photo).changed, "the detector found nothing: nothing was inpainted"
        ms[name] = timed(lambda r=reconstructor: r(photo), repeats, warmup=0)
    first = paths["jax"](photo).image.astype(np.int16)
    ms["max_pixel_difference"] = int(np.abs(first - paths["onnx"](photo).image).max())
    return ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "full.py"))
    parser.add_argument("--inpainter", default="", help="trained inpainter workdir")
    parser.add_argument("--detector", default="", help="trained detector checkpoint")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default=str(RESULTS / "serve"), help="scratch folder")
    parser.add_argument("--json", default=str(RESULTS / "serve.json"))
    parser.add_argument("--make_models", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_models:  # the child process of the comment below
        if not os.path.isfile(os.path.join(args.inpainter, "config.json")):
            make_workdir(args.config, args.inpainter)
        if not os.path.isfile(args.detector):
            with open(os.path.join(args.inpainter, "config.json")) as f:
                make_detector(int(json.load(f)["image_size"]), args.detector)
        from data_pipeline.compose import demo_photo
        from jaxinpaint.samples import write_image

        write_image(os.path.join(args.workdir, "photo.png"), demo_photo()[0])
        return

    scratch = os.path.abspath(args.workdir)
    os.makedirs(scratch, exist_ok=True)
    workdir = args.inpainter or os.path.join(scratch, "inpainter")
    detector = args.detector or os.path.join(scratch, "detector.pt")
    # Made in a child process: a child's peak RSS starts at its parent's (Linux keeps the high
    # water mark across fork and exec), so this process must stay small.
    models = [f"--config={args.config}", f"--inpainter={workdir}", f"--detector={detector}"]
    subprocess.run([PY, __file__, "--make_models", f"--workdir={scratch}", *models], check=True)
    with open(os.path.join(workdir, "config.json")) as f:
        size = int(json.load(f)["image_size"])
    exported = os.path.join(scratch, "exported")
    export_s, _ = run_process(
        [PY, "launch/export.py", f"--inpainter={workdir}", f"--detector={detector}",
         f"--output={exported}"]
    )  # fmt: skip

    photo_path = os.path.join(scratch, "photo.png")
    out = os.path.join(scratch, "out.png")
    cache = tempfile.mkdtemp(prefix="jax-cache-", dir=scratch)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
    reconstruct = [PY, "launch/reconstruct.py", f"--input={photo_path}", f"--output={out}"]
    jax_args = [*reconstruct, f"--inpainter={workdir}", f"--detector={detector}", "--device=cpu"]
    process = {
        "jax, cold cache": run_process(jax_args, env),
        "jax, warm cache": run_process(jax_args, env),
        "onnx": run_process([*reconstruct, f"--exported={exported}"], env),
    }
    shutil.rmtree(cache, ignore_errors=True)
    loading = {
        "whole training state": run_process([PY, "-c", LOAD_WHOLE_STATE, workdir])[1],
        "generator only": run_process([PY, "-c", LOAD_GENERATOR, workdir])[1],
    }
    ms = per_photo_ms(workdir, detector, exported, args.repeats)

    print(f"model {size}x{size}, {os.cpu_count()} CPUs; export {export_s:.1f} s")
    print(f"{'reconstruct process':<24}{'s':>8}{'peak RSS MiB':>14}")
    for name, (seconds, rss) in process.items():
        print(f"{name:<24}{seconds:>8.1f}{rss:>14.0f}")
    print(f"{'per photo, in process':<24}{'ms':>8}")
    for name in ("jax", "onnx", "onnx, float generator"):
        if name in ms:
            print(f"{name:<24}{ms[name]:>8.0f}")
    print(f"{'loading the generator':<24}{'peak RSS MiB':>14}")
    for name, rss in loading.items():
        print(f"{name:<24}{rss:>14.0f}")
    sizes = {n: os.path.getsize(os.path.join(exported, n)) for n in sorted(os.listdir(exported))}
    result = dict(
        benchmark="serve",
        machine=platform.machine(),
        cpus=os.cpu_count(),
        size=size,
        trained=bool(args.inpainter),
        export_seconds=export_s,
        export_bytes=sizes,
        process={k: {"seconds": s, "peak_rss_mib": r} for k, (s, r) in process.items()},
        per_photo_ms=ms,
        generator_loading_peak_rss_mib=loading,
    )
    write_json(args.json, result)
    print(
        f"warm_s={process['jax, warm cache'][0]:.1f} onnx_s={process['onnx'][0]:.1f} "
        f"reconstruct_ms_jax={ms['jax']:.0f} reconstruct_ms_onnx={ms['onnx']:.0f}"
    )


if __name__ == "__main__":
    main()
