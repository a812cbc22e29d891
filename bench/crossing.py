"""Occluders that reach past the face's window, through `Reconstructor`: hole PSNR of the model, of
its smooth start alone and of OpenCV's Telea, and the occluder pixels left in the result.

    python bench/crossing.py --workdir=runs/demo/inpainter --data=runs/demo/data \\
        --save=/tmp/crossing.npz [--split=test] [--detector=runs/demo/detector/model_final.pt]
    PYTHONPATH=<another checkout> python bench/crossing.py --workdir=... \\
        --examples=/tmp/crossing.npz          # the very same photos, that checkout's Reconstructor

Photos: `jaxinpaint.evaluation.photos.photo_examples(crossing=True)` of the dataset build in
--data (with the demo's build and the default test split, the 12 test faces of 5 persons that
neither the detector nor the inpainter trained on): each face photo as `launch/evaluate.py
--photos` scores it, and again framed by a blurred copy of itself with the occluder placed across
the face's edge. `--save` writes them to an .npz and `--examples` reads them back, so that a
checkout without `photo_examples(crossing=)` (before the change) scores the same photos with its
own `Reconstructor`.

Every method fills the exact occluder mask (or, with --detector, the hole the detector finds, as
`launch/reconstruct.py --detector` finds it; with `--holes=found+missed` that hole and the occluder
pixels it missed). Scores are over the exact mask, at the photo's
resolution, by whether the occluder crosses the face's aligned window: hole PSNR (dB, mean over
photos), and "left": the mask pixels the method left exactly as the occluded input had them
(summed over photos). "smooth" is the model's base alone (`smooth_fill_around_hole` with the
reconstructor's `base_steps`), the fill the model's correction is added to.
"""

import argparse
import json
import os

import numpy as np
from bench_common import RESULTS, write_json

from jaxinpaint.fills import classical_inpaint, smooth_fill_around_hole
from jaxinpaint.inference import Inpainter
from jaxinpaint.reconstruct import DETECTOR_GROW, ON_FACE, Reconstructor

_KEYS = ("occluded", "original", "mask", "crosses")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="the inpainter's training workdir (none: only --save)")
    parser.add_argument("--data", default="runs/demo/data", help="the dataset build's --out")
    parser.add_argument("--split", default="test", help="test | validation | train")
    parser.add_argument("--save", help="write the photos to this .npz")
    parser.add_argument("--examples", help="read the photos from this .npz instead")
    parser.add_argument("--detector", help="fill the hole this detector checkpoint finds")
    parser.add_argument(
        "--holes",
        choices=("found", "found+missed"),
        default="found",
        help="with --detector: its hole, or its hole and the occluder pixels it missed (a hole "
        "that covers the whole occluder, grown where the detector grew it)",
    )
    parser.add_argument(
        "--reach", action="store_true", help="with --detector: Reconstructor(reach=True)"
    )
    parser.add_argument(
        "--base", default="auto", help="Reconstructor(base=): auto (the model's coarse fill), "
        "harmonic, biharmonic; the smooth row is that fill alone"
    )  # fmt: skip
    parser.add_argument("--json", default=str(RESULTS / "crossing.json"))
    return parser.parse_args()


def load_examples(args) -> list[dict]:
    if args.examples:
        with np.load(args.examples) as f:
            n = len([k for k in f.files if k.startswith("mask_")])
            return [{k: f[f"{k}_{i}"] for k in _KEYS} for i in range(n)]
    from jaxinpaint.evaluation.photos import photo_examples

    examples = [
        {k: ex[k] for k in _KEYS}
        for ex in photo_examples(args.data, args.split, seed=0, crossing=True)
    ]
    if args.save:
        arrays = {f"{k}_{i}": np.asarray(ex[k]) for i, ex in enumerate(examples) for k in _KEYS}
        np.savez_compressed(args.save, **arrays)
    return examples


def hole_psnr(out: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    err = (out[mask].astype(np.float64) - original[mask].astype(np.float64)) / 255.0
    return float(10 * np.log10(1.0 / max(np.mean(err**2), 1e-10)))


def hole_stats(finder: Reconstructor, examples: list[dict]) -> None:
    """The detector's holes alone: occluder pixels they miss, and hole pixels off the occluder."""
    rows = {}
    for ex in examples:
        mask, hole = ex["mask"].astype(bool), finder.hole(ex["occluded"])
        row = rows.setdefault("yes" if bool(ex["crosses"]) else "no", [0, 0, 0, 0])
        row[0] += 1
        row[1] += int(mask.sum())
        row[2] += int((mask & ~hole).sum())
        row[3] += int((hole & ~mask).sum())
    for crosses, (n, occluder, missed, off) in sorted(rows.items()):
        print(
            f"crosses {crosses}: {n} photos, {occluder} occluder px, missed {missed} "
            f"({missed / max(occluder, 1):.1%}), hole px off the occluder {off}"
        )


def main():
    args = parse_args()
    examples = load_examples(args)
    finder = None
    if args.detector:
        from detector.predict import Detector, default_device

        detector = Detector.from_checkpoint(args.detector, device=default_device())
        finder = Reconstructor(
            None, detector.detect, size=64, base="none",  # the size does not change the hole
            mask_size=detector.input_size, grow=DETECTOR_GROW, on_face=ON_FACE,
            **({"reach": True} if args.reach else {}),
        )  # fmt: skip
    if not args.workdir:
        print(f"{len(examples)} photos" + (f" saved to {args.save}" if args.save else ""))
        if finder is not None:
            hole_stats(finder, examples)
        return
    inpainter = Inpainter.from_workdir(args.workdir)
    rec = Reconstructor(inpainter, None, size=inpainter.size, base=args.base)
    rows = {}
    for ex in examples:
        occluded, original, mask = ex["occluded"], ex["original"], ex["mask"].astype(bool)
        hole = mask
        if finder is not None:
            found = finder.hole(occluded)
            hole = found | mask if args.holes == "found+missed" else found
        outputs = {
            "model": rec(occluded, hole).image,
            "smooth": np.clip(
                smooth_fill_around_hole(occluded, hole, rec.base, rec.base_steps) + 0.5, 0, 255
            ).astype(np.uint8),
            "telea": classical_inpaint(occluded, hole, "telea"),
        }
        group = rows.setdefault("yes" if bool(ex["crosses"]) else "no", {})
        for name, out in outputs.items():
            scores = group.setdefault(name, {"psnr_hole": [], "left": 0})
            scores["psnr_hole"].append(hole_psnr(out, original, mask))
            scores["left"] += int(np.all(out == occluded, axis=-1)[mask].sum())
    result = {"args": vars(args), "base": rec.base, "base_steps": rec.base_steps, "rows": {}}
    print(f"{'crosses':<8}{'n':>4}  " + "  ".join(f"{m:>17}" for m in ("model", "smooth", "telea")))
    for crosses, group in sorted(rows.items()):
        n = len(group["model"]["psnr_hole"])
        cells = {m: (float(np.mean(s["psnr_hole"])), s["left"]) for m, s in group.items()}
        result["rows"][crosses] = {"n": n, **{m: {"psnr_hole": p, "left": left}
                                             for m, (p, left) in cells.items()}}  # fmt: skip
        print(
            f"{crosses:<8}{n:>4}  "
            + "  ".join(f"{p:>7.2f} dB {left:>5} px" for p, left in cells.values())
        )
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    write_json(args.json, result)
    print(json.dumps({k: v["model"] for k, v in result["rows"].items()}))


if __name__ == "__main__":
    main()
