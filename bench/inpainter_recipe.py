r"""Ablation of the inpainter's training recipe: each change, the same step budget, scored on
the validation faces (never trained on: splits by person) against cv2.inpaint on the same examples.

    python bench/inpainter_recipe.py [--steps=400] [--variants=seed,aligned,...] [--examples=96]

Each variant trains `configs/demo.py`'s sizes and schedule with the seed's recipe (the full
config's losses and generator) plus its overrides and those of every variant before it (the
order of VARIANTS; `geometry` is the demo's recipe) for `--steps` steps in `--out/<variant>`
(resumed if there). Then its generator, OpenCV's Telea and Navier-Stokes, and the harmonic and
biharmonic fills alone (what a generator starts from: the network's own share is the difference)
fill the same `--examples` validation examples. Prints a table (hole PSNR, hole SSIM, LPIPS),
writes JSON to bench/results/inpainter_recipe.json, and ends with `best_minus_telea_db=`.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

from bench_common import RESULTS, write_json

import configs
from jaxinpaint import input_pipeline, train
from jaxinpaint.evaluation import evaluate, report
from jaxinpaint.inference import Inpainter

# name -> (what it adds, config overrides); each variant includes those before it.
VARIANTS = {
    "seed": ("the seed's recipe on square Haar-style crops", {"data.align": False}),
    "aligned": ("faces aligned by keypoints", {"data.align": True}),
    "coarse": ("generator starts from a push-pull fill", {"gen.coarse_fill": "pushpull"}),
    "harmonic": ("... relaxed to a harmonic fill", {"gen.coarse_fill": "harmonic"}),
    "augment": ("mirror + colour jitter of training faces", {"data.augment": True}),
    "less_style": (
        "style loss 120 -> 10, adversarial 0.1 -> 0.02",
        {"loss.style": 10.0, "loss.adv": 0.02},
    ),
    "recon": ("no style loss, adversarial 0.01", {"loss.style": 0.0, "loss.adv": 0.01}),
    "l1_heavy": ("hole L1 weight 6 -> 20", {"loss.hole": 20.0}),
    "ema": ("moving average of the generator (decay 0.995)", {"gen_optim.ema": 0.995}),
    "slow": ("generator learning rate 5e-4 -> 2e-4", {"gen_optim.lr": 2e-4}),
    "light_vgg": ("perceptual weight 0.05 -> 0.02", {"loss.perceptual": 0.02}),
    "geometry": ("random scale/shift ±5 %, rotation ±3°", {"data.augment_geometry": 0.05}),
    "biharmonic": ("generator starts from a biharmonic fill", {"gen.coarse_fill": "biharmonic"}),
    "no_vgg": ("no perceptual term: no VGG16 in the step", {"loss.perceptual": 0.0}),
    "free_form": ("25 % free-form stroke/box holes", {"data.free_form": 0.25}),
}
COLUMNS = ("model", "telea", "ns", "harmonic", "biharmonic")  # the last two: fills alone


def config_for(names: list[str], steps: int):
    """`configs/demo.py`'s sizes and schedule with the full config's recipe (the seed's), then
    the overrides of `names` in turn."""
    config = configs.get("demo")
    full = configs.get("full")
    config.loss = full.loss
    config.gen.coarse_fill = full.gen.coarse_fill
    config.gen_optim.ema = full.gen_optim.ema
    for key in ("augment", "augment_geometry", "free_form"):
        config.data[key] = full.data[key]
    for name in names:
        for key, value in VARIANTS[name][1].items():
            node = config
            *path, leaf = key.split(".")
            for part in path:
                node = node[part]
            node[leaf] = value
    config.total_steps = steps
    config.eval_every = 0
    config.sample_every = steps
    config.checkpoint_every = steps
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="runs/recipe")
    parser.add_argument("--json", default=str(RESULTS / "inpainter_recipe.json"))
    args = parser.parse_args()
    chosen = args.variants.split(",")
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    rows = {}
    order = list(VARIANTS)
    for name in chosen:
        names = order[: order.index(name) + 1]
        config = config_for(names, args.steps)
        workdir = os.path.join(args.out, name)
        start = time.perf_counter()
        train.train_and_evaluate(config, workdir)
        minutes = (time.perf_counter() - start) / 60
        inpainter = Inpainter.from_workdir(workdir, checkpoint="latest")
        held_out = input_pipeline.fixed_examples(config, args.examples)
        examples = [
            {"id": f"val{i}", "category": 0, **{k: v[i] for k, v in held_out.items()}}
            for i in range(args.examples)
        ]
        model = functools.partial(lambda inp, o, h: inp.inpaint_batch(o, h)[1], inpainter)
        # Baselines: Telea, NS and the smooth fills a generator starts from (the network's own
        # share is the gap to its fill).
        result = evaluate.evaluate(model, examples)
        overall = report.aggregate(result.records)["overall"]
        rows[name] = {
            "adds": VARIANTS[name][0],
            "minutes": round(minutes, 1),
            **{
                method: {k: overall[method][k] for k in ("psnr_hole", "ssim_hole", "lpips")}
                for method in COLUMNS
            },
        }
        print(f"{name}: {rows[name]}", flush=True)

    print(
        f"\n{args.steps} steps each; {args.examples} validation examples (validation faces, "
        "never trained on); hole PSNR dB / hole SSIM / LPIPS"
    )
    print(f"{'variant':<11}" + "".join(f"{m:>24}" for m in COLUMNS) + f"{'min':>6}")
    for name, r in rows.items():
        cells = "".join(
            f"{r[m]['psnr_hole']:>9.2f}{r[m]['ssim_hole']:>7.3f}{r[m]['lpips']:>8.4f}"
            for m in COLUMNS
        )
        print(f"{name:<11}{cells}{r['minutes']:>6.1f}")
    best = max(rows.values(), key=lambda r: r["model"]["psnr_hole"])
    margin = best["model"]["psnr_hole"] - best["telea"]["psnr_hole"]
    write_json(
        args.json,
        {"benchmark": "inpainter_recipe", "steps": args.steps, "examples": args.examples,
         "variants": rows, "best_minus_telea_db": margin},
    )  # fmt: skip
    print(f"best_minus_telea_db={margin:.2f}")


if __name__ == "__main__":
    main()
