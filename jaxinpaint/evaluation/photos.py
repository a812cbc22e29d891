"""Evaluation on whole photos at their own resolution: the user's path through `Reconstructor`.

The crop evaluation (`evaluate.evaluate`) scores the generator at its training resolution. A
user's photo is larger: `Reconstructor` aligns the face, fills the hole at the model's resolution
and warps the fill back, while `cv2.inpaint` works on the photo's own pixels. `photo_examples`
makes such photos from the examples of one dataset split (each example's face: the sample crop at
its stored 160 px, or the source photo of a folder build), with a library occluder of the
example's category pasted at the photo's resolution (a build with `--per_face=N` gives N per
face); `score_photos` runs the model and the classical baselines on them and scores a square
around each face, so the numbers can be set beside the crop table.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator

import numpy as np

from jaxinpaint.evaluation import metrics
from jaxinpaint.evaluation.evaluate import GENDERS
from jaxinpaint.evaluation.lpips import LPIPS
from jaxinpaint.evaluation.structure import StructureError
from jaxinpaint.fills import (
    METHODS,
    SMOOTH_FILLS,
    classical_inpaint,
    smooth_fill_around_hole,
)


def _source_photo(row: dict, sample: dict[str, np.ndarray]) -> np.ndarray | None:
    from data_pipeline import images

    if row["face_id"] in sample:
        return sample[row["face_id"]]
    source = row.get("source", "")
    if source and os.path.isfile(source):
        return images.load_rgb(source)
    return None


def photo_examples(dataset_dir: str, split: str, seed: int = 0) -> Iterator[dict]:
    """One occluded photo per example of `split`: {id, category, gender, occluded, original,
    mask, window}, `window` = (x0, y0, x1, y1), the face's square (twice its box) inside the
    photo."""
    from data_pipeline import compose, faces, occluders, sample_faces
    from data_pipeline.categories import ID_TO_CATEGORY

    path = os.path.join(dataset_dir, "pairs", "index.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: expected the --out folder of the dataset build")
    with open(path, encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["split"] == split]
    sample = {f.id: f.image for f in sample_faces.load(sample_faces.CROP_SIZE, align=False)}
    library = occluders.OccluderLibrary.load()
    boxes = {}  # face id -> its box in the photo (None: not found), found once per face
    for row in rows:
        face_id = row["face_id"]
        photo = _source_photo(row, sample)
        if photo is None:
            continue
        if face_id not in boxes:
            found = faces.find_faces(photo)
            boxes[face_id] = found[0].box if found else None
        box = boxes[face_id]
        if box is None:
            continue
        face = faces.Face(face_id, photo, box, "photo")
        digest = hashlib.sha1(f"{seed}:{row['id']}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        category = ID_TO_CATEGORY[row["category"]]
        for v in rng.permutation(len(library.items[category])):
            parts = compose.composite(face, library.items[category][v], rng)
            if parts is not None:
                break
        else:
            continue
        window = faces.face_bounds(box, photo.shape)  # twice the box
        yield {
            "id": row["id"],
            "category": row["category"],
            "gender": row.get("gender", -1),
            "occluded": parts["occluded"],
            "original": photo,
            "mask": parts["mask"][..., 0] > 0,
            "window": window,
        }


def score_photos(
    reconstruct: Callable[[np.ndarray, np.ndarray], np.ndarray],
    examples: Iterator[dict],
    baselines: tuple[str, ...] = METHODS,
    lpips: LPIPS | None = None,
    smooth_steps: int | None = None,
    structure: StructureError | None = None,
) -> list[dict]:
    """Records in the form of `evaluate.evaluate`'s, for `report.aggregate`: each method's PSNR,
    SSIM (over the face square and over the hole in it) and LPIPS of the face square, at the
    photo's resolution. `reconstruct(occluded, mask) -> photo` is the model's path. With
    `smooth_steps` the smooth fills are made as `Reconstructor(base_steps=smooth_steps)` makes
    its base, so that their rows are the model's starting point.

    Every method fills the example's `fill` (HxW bool) when it has one, such as the hole a
    detector found, else its exact `mask`; the hole scores are always over the exact mask, the
    pixels the occluder hid."""
    from data_pipeline.categories import ID_TO_CATEGORY

    lpips = lpips or LPIPS()
    structure = structure or StructureError()
    records = []
    for ex in examples:
        hole = ex.get("fill", ex["mask"])
        outputs = {"model": reconstruct(ex["occluded"], hole)}
        for name in baselines:
            if smooth_steps is not None and name in SMOOTH_FILLS:
                fill = smooth_fill_around_hole(ex["occluded"], hole, name, smooth_steps)
                outputs[name] = np.clip(np.rint(fill), 0, 255).astype(np.uint8)
            else:
                outputs[name] = classical_inpaint(ex["occluded"], hole, name)
        x0, y0, x1, y1 = ex["window"]
        target = ex["original"][None, y0:y1, x0:x1].astype(np.float32) / 255.0
        hole = ex["mask"][None, y0:y1, x0:x1, None].astype(np.float32)
        scores = {}
        for name, out in outputs.items():
            out_f = out[None, y0:y1, x0:x1].astype(np.float32) / 255.0
            scores[name] = {
                "psnr": float(metrics.psnr(out_f, target)[0]),
                "psnr_hole": float(metrics.psnr(out_f, target, hole)[0]),
                "ssim": float(metrics.ssim(out_f, target)[0]),
                "ssim_hole": float(metrics.ssim(out_f, target, hole)[0]),
                "lpips": float(lpips(out_f, target)[0]),
                "structure": float(structure(out_f, target, hole, aligned=False)[0]),
            }
        records.append(
            {
                "id": ex["id"],
                "category": ID_TO_CATEGORY.get(int(ex["category"]), str(ex["category"])),
                "gender": GENDERS.get(int(ex["gender"])),
                "mask_ratio": float(hole.mean()),
                "metrics": scores,
                # the face squares, for pictures: input, each method, truth
                "faces": {
                    k: v[y0:y1, x0:x1]
                    for k, v in {
                        "occluded": ex["occluded"],
                        **outputs,
                        "original": ex["original"],
                    }.items()
                },
            }
        )
    if not records:
        raise ValueError("no photo of the split could be occluded and scored")
    return records
