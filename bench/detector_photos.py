"""The detector on whole held-out photos, the way reconstruction uses it: found rate and fit.

    python bench/detector_photos.py --detector=runs/demo/detector/model_final.pt
        [--data=runs/demo/data] [--split=test] [--seeds=0,1,2] [--thresholds=0.3,0.5,0.7]
        [--on_face=0.3]

Photos: `jaxinpaint.evaluation.photos.photo_examples` of the dataset build in --data, the photos
`launch/evaluate.py --photos` scores: each example's face photo at its own resolution with a
library occluder of the example's category pasted on it, one per --seeds value (placement and
variant change with the seed, the category does not). With the demo's build and the default
test split these are the 12 test faces of 5 persons that neither the detector nor the
inpainter trained on. The same photos without the occluder are the control.

Each photo goes through `jaxinpaint.reconstruct.Reconstructor.hole`, as `launch/reconstruct.py` runs
it (faces found and aligned, the detector shown the face at its own input size), with the hole
not grown (dilate 0), detections mostly off the face dropped as reconstruct drops them
(`--on_face`, 0 keeps all) and no inpainting, for each scoring (`detector.model.set_scoring`:
"occluder" = p(any occluder), "class" = p(the detection's class)) and score threshold. Per
(scoring, threshold) it reports, over the occluded photos: how many have any hole, how many a
hole whose IoU with the exact occluder mask is at least 0.5 ("found"), the median IoU (0 for no
hole) and the median fraction of occluder pixels inside the hole ("covered"); over the clean
photos, how many get a hole (false alarms). Prints a table, writes --json
(bench/results/detector_photos.json); the last line is
`found=<found/occluded at the checkpoint's threshold, occluder scoring>`.
"""

import argparse
import platform
import time

import numpy as np
from bench_common import RESULTS, write_json

from data_pipeline.categories import ID_TO_CATEGORY
from detector.predict import Detector
from jaxinpaint.evaluation.photos import photo_examples
from jaxinpaint.reconstruct import ON_FACE, Reconstructor

SCORINGS = ("occluder", "class")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", required=True, help="a detector checkpoint (.pt)")
    parser.add_argument("--data", default="runs/demo/data", help="the dataset build's --out")
    parser.add_argument("--split", default="test", help="test | validation | train")
    parser.add_argument("--seeds", default="0,1,2", help="one occluded photo per example each")
    parser.add_argument("--thresholds", default="0.3,0.5,0.7", help="score thresholds")
    parser.add_argument(
        "--on_face",
        type=float,
        default=ON_FACE,
        help="least fraction of a detection's mask on the face (Reconstructor(on_face=))",
    )
    parser.add_argument("--json", default=str(RESULTS / "detector_photos.json"))
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.thresholds = sorted(float(t) for t in args.thresholds.split(","))
    return args


def fit(hole: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(IoU of the hole with the exact occluder mask, fraction of the occluder it covers)."""
    inter = float(np.logical_and(hole, exact).sum())
    union = float(np.logical_or(hole, exact).sum())
    return inter / max(union, 1.0), inter / max(float(exact.sum()), 1.0)


def main():
    args = parse_args()
    examples = [
        {**ex, "seed": seed}
        for seed in args.seeds
        for ex in photo_examples(args.data, args.split, seed=seed)
    ]
    if not examples:
        raise SystemExit(f"error: no {args.split} photo in {args.data}")
    clean = list({ex["id"]: ex["original"] for ex in examples}.values())

    start = time.perf_counter()
    loaded = Detector.from_checkpoint(args.detector)  # read once; each setting reuses its model
    default_thresh = loaded.score_thresh
    classes = [ID_TO_CATEGORY[i] for i in sorted(loaded.class_ids)]  # the checkpoint's choice
    rows = []
    for scoring in SCORINGS:
        for thresh in sorted({*args.thresholds, default_thresh}):
            detector = Detector(loaded.model, score_thresh=thresh, classes=classes, score=scoring)
            finder = Reconstructor(  # the holes alone, not grown: no inpainting
                None,
                detector.detect,
                size=64,
                base="none",
                dilate=0,
                feather=0,
                mask_size=detector.input_size,
                on_face=args.on_face,
            )
            per_photo = []
            for ex in examples:
                hole = finder.hole(ex["occluded"])
                iou, covered = fit(hole, ex["mask"])
                per_photo.append(
                    {
                        "id": ex["id"],
                        "seed": ex["seed"],
                        "category": ID_TO_CATEGORY[ex["category"]],
                        "hole": bool(hole.any()),
                        "iou": round(iou, 4),
                        "covered": round(covered, 4),
                    }
                )
            false_alarms = sum(finder.hole(photo).any() for photo in clean)
            ious = [p["iou"] for p in per_photo]
            rows.append(
                {
                    "scoring": scoring,
                    "threshold": thresh,
                    "occluded": len(per_photo),
                    "any_hole": sum(p["hole"] for p in per_photo),
                    "found": sum(i >= 0.5 for i in ious),
                    "median_iou": float(np.median(ious)),
                    "median_covered": float(np.median([p["covered"] for p in per_photo])),
                    "clean": len(clean),
                    "false_alarms": int(false_alarms),
                    "photos": per_photo,
                }
            )
    seconds = time.perf_counter() - start

    print(
        f"{len(examples)} occluded photos ({args.split} split of {args.data}, seeds "
        f"{args.seeds}) and {len(clean)} clean ones; detector {args.detector}; detections "
        f"with under {args.on_face:.0%} of their mask on the face dropped"
    )
    print(
        "| scoring | threshold | any hole | found (IoU >= 0.5) | median IoU | median covered "
        "| clean photos with a hole |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["occluded"]
        print(
            f"| {r['scoring']} | {r['threshold']:.2f} | {r['any_hole']}/{n} | {r['found']}/{n} "
            f"| {r['median_iou']:.3f} | {r['median_covered']:.3f} "
            f"| {r['false_alarms']}/{r['clean']} |"
        )
    write_json(
        args.json,
        {
            "detector": args.detector,
            "data": args.data,
            "split": args.split,
            "seeds": args.seeds,
            "on_face": args.on_face,
            "seconds": round(seconds, 1),
            "machine": platform.processor() or platform.machine(),
            "rows": rows,
        },
    )
    main_row = next(
        r for r in rows if r["scoring"] == "occluder" and r["threshold"] == default_thresh
    )
    print(f"found={main_row['found']}/{main_row['occluded']}")


if __name__ == "__main__":
    main()
