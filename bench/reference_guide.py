"""What a reference photo of the same person gives a fill, on whole photos of one dataset split.

    python bench/reference_guide.py --dataset=runs/demo/data --split=test \
        [--inpainter=runs/demo/inpainter] [--gains=0.5,1.0]

Each example of the split is its face's photo (the sample crop at 160 px) with a library occluder
of the example's category pasted on it (`jaxinpaint.evaluation.photos.photo_examples`: the photo
evaluation's own examples). Its references are the person's other sample faces: never the scored
photo. Persons are split whole, so on the test split no training stage saw any of them. Rows:
the smooth start alone (the full-resolution biharmonic base), the smooth start plus each gain of
the reference's detail (`data_pipeline.guide`; no model), the same with the exemplar posed
most like the face from a gallery of --exemplars train faces (other persons), and with
--inpainter the model without and with the reference (`Reconstructor(references=...)`); Telea
for scale. Scores: hole PSNR and LPIPS over the hole's box (grown by 8 px), split by what the
occluder hides (eyes: it covers an eye contour point of the original's mesh; mouth: a lip point
and no eye; other), each method's LPIPS also as a ratio to the smooth start's. Table to stdout,
JSON to bench/results/reference_guide_<split>.json, a picture per eye-hiding example with
--pictures.
"""

import argparse
import collections
import json
import os

import numpy as np
from bench_common import RESULTS, write_json
from PIL import Image

from data_pipeline import faces, guide, sample_faces
from jaxinpaint.evaluation import metrics
from jaxinpaint.evaluation.lpips import LPIPS
from jaxinpaint.evaluation.photos import photo_examples
from jaxinpaint.fills import classical_inpaint, smooth_fill
from jaxinpaint.reconstruct import Reconstructor

PERSONS = os.path.join(os.path.dirname(sample_faces.__file__), "assets", "faces", "persons.json")
EYES = list(guide.RIGHT_EYE + guide.LEFT_EYE)
LIPS = list(guide.LIPS)


def smooth_only(face, hole):
    """The generator's place taken by its own start: the model's correction is 0."""
    return np.clip(np.rint(smooth_fill(face, hole, "biharmonic")), 0, 255).astype(np.uint8)


smooth_only.coarse_fill = "biharmonic"


def hides(mask: np.ndarray, mesh: np.ndarray) -> str:
    """ "eyes", "mouth" or "other": what of the original's mesh the exact mask covers."""
    h, w = mask.shape

    def covered(ids):
        pts = np.clip(np.round(mesh[ids]).astype(int), 0, [w - 1, h - 1])
        return bool(mask[pts[:, 1], pts[:, 0]].any())

    return "eyes" if covered(EYES) else "mouth" if covered(LIPS) else "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="runs/demo/data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--inpainter", default="", help="a training workdir (launch/train.py)")
    parser.add_argument("--gains", default="0.5,1.0")
    parser.add_argument("--max_photos", type=int, default=60, help="score at most this many")
    parser.add_argument(
        "--base_steps",
        type=int,
        default=None,
        help="relax the base this many steps (default: solve)",
    )
    parser.add_argument("--pictures", default="", help="folder for eye-hiding examples' strips")
    parser.add_argument(
        "--exemplars", type=int, default=30, help="train faces in the exemplar gallery (0: none)"
    )
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.split(",")]

    with open(PERSONS, encoding="utf-8") as f:
        persons = json.load(f)["persons"]
    crops = {f.id: f.image for f in sample_faces.load(sample_faces.CROP_SIZE, align=False)}
    with open(os.path.join(args.dataset, "pairs", "index.jsonl"), encoding="utf-8") as f:
        index = [json.loads(line) for line in f]
    face_of = {r["id"]: r["face_id"] for r in index}
    train_faces = sorted({r["face_id"] for r in index if r["split"] == "train"})
    refs: dict[str, guide.Reference | None] = {}

    def reference(face_id):
        if face_id not in refs:
            try:
                refs[face_id] = guide.reference(crops[face_id], face_id)
            except ValueError:
                refs[face_id] = None
        return refs[face_id]

    gallery = [r for r in map(reference, train_faces[: args.exemplars]) if r is not None]
    if args.split == "train":
        gallery = []  # exemplars of other persons are scored where no person is a train one
    smooth = Reconstructor(smooth_only, None, size=64, base_steps=args.base_steps)
    model = None
    if args.inpainter:
        from jaxinpaint.inference import Inpainter

        inpainter = Inpainter.from_workdir(args.inpainter)
        align = inpainter.config.data.get("align", True)
        model = Reconstructor(
            inpainter, None, size=inpainter.size, base_steps=args.base_steps, align=align
        )
    lpips = LPIPS()
    rows = []
    for ex in photo_examples(args.dataset, args.split):
        if len(rows) >= args.max_photos:
            break
        face_id = face_of[ex["id"]]
        others = [f for f, p in persons.items() if p == persons[face_id] and f != face_id]
        references = [r for r in map(reference, others) if r is not None]
        if not references:
            continue
        original, occluded, mask = ex["original"], ex["occluded"], ex["mask"]
        found = [f for f in faces.find_faces(original) if f.keypoints is not None]
        if not found:
            continue
        part = hides(mask, guide.find_mesh(original, found[0]).points)
        outputs = {"telea": classical_inpaint(occluded, mask, "telea")}
        outputs["smooth"] = smooth(occluded, mask).image
        used = {}
        for gain in gains:
            smooth.guide_gain = gain
            result = smooth(occluded, mask, references=references)
            outputs[f"smooth+ref x{gain:g}"] = result.image
            used = {f.reference: f.reference_cover for f in result.faces if f.reference}
            if gallery:
                result = smooth(occluded, mask, references=gallery)
                outputs[f"smooth+exemplar x{gain:g}"] = result.image
        if model is not None:
            outputs["model"] = model(occluded, mask).image
            for gain in gains:
                model.guide_gain = gain
                outputs[f"model+ref x{gain:g}"] = model(occluded, mask, references=references).image
        ys, xs = np.nonzero(mask)
        y0, y1 = max(ys.min() - 8, 0), ys.max() + 9
        x0, x1 = max(xs.min() - 8, 0), xs.max() + 9
        truth = original[None].astype(np.float32) / 255
        hole = mask[None, ..., None].astype(np.float32)
        scores = {}
        for name, out in outputs.items():
            out_f = out[None].astype(np.float32) / 255
            scores[name] = {
                "psnr_hole": float(metrics.psnr(out_f, truth, hole)[0]),
                "lpips_box": float(lpips(out_f[:, y0:y1, x0:x1], truth[:, y0:y1, x0:x1])[0]),
            }
        rows.append({"id": ex["id"], "face": face_id, "hides": part, "references": used,
                     "scores": scores})  # fmt: skip
        if args.pictures and part == "eyes":
            os.makedirs(args.pictures, exist_ok=True)
            strip = [occluded, *outputs.values(), original]
            Image.fromarray(np.concatenate([s[max(y0 - 20, 0) : y1 + 20] for s in strip], 1)).save(
                os.path.join(args.pictures, f"{ex['id']}.png")
            )
    if not rows:
        raise SystemExit(f"no example of {args.split} has a person with another usable photo")
    table = collections.defaultdict(dict)
    for group in ("eyes", "mouth", "other", "all"):
        mine = [r for r in rows if group in ("all", r["hides"])]
        if not mine:
            continue
        for name in rows[0]["scores"]:
            psnr = np.mean([r["scores"][name]["psnr_hole"] for r in mine])
            lp = np.mean([r["scores"][name]["lpips_box"] for r in mine])
            lp0 = np.mean([r["scores"]["smooth"]["lpips_box"] for r in mine])
            table[group][name] = {"n": len(mine), "psnr_hole": psnr, "lpips_box": lp,
                                  "lpips_vs_smooth": lp / lp0}  # fmt: skip
    seen = "train persons" if args.split == "train" else "persons no training saw"
    print(f"{args.split} split of {args.dataset}: {len(rows)} photos ({seen})")
    print(f"{'hides':6} {'method':18} {'n':>3} {'hole PSNR':>9} {'LPIPS box':>9} {'/ smooth':>8}")
    for group, methods in table.items():
        for name, s in methods.items():
            print(f"{group:6} {name:18} {s['n']:3d} {s['psnr_hole']:9.2f} {s['lpips_box']:9.4f} "
                  f"{s['lpips_vs_smooth']:8.3f}")  # fmt: skip
    write_json(
        RESULTS / f"reference_guide_{args.split}.json",
        {"args": vars(args), "table": table, "rows": rows},
    )


if __name__ == "__main__":
    main()
