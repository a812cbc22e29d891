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

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator

import cv2
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


def photo_examples(
    dataset_dir: str, split: str, seed: int = 0, crossing: bool = False
) -> Iterator[dict]:
    """One occluded photo per example of `split`: {id, category, gender, occluded, original,
    mask, window, crosses}, `window` = (x0, y0, x1, y1), the square scored (the face's square,
    twice its box, inside the photo), `crosses` whether some of the occluder lies outside the
    face's aligned window (the crop a model framed by keypoints sees).

    With `crossing`, each example also comes a second time ("<id>-crossing"): the photo framed
    by a blurred copy of itself (`framed`), so that there is room around the face, and the
    occluder placed across the face's edge (`compose.place(cross=True)`: below the chin, a cap
    above the brow; masks and sunglasses as usual); its scored square also holds the whole
    occluder. The first examples are those of a run without `crossing`."""
    from data_pipeline import compose, faces, occluders, sample_faces
    from data_pipeline.categories import ID_TO_CATEGORY

    path = os.path.join(dataset_dir, "pairs", "index.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: expected the --out folder of the dataset build")
    with open(path, encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r["split"] == split]
    sample = {f.id: f.image for f in sample_faces.load(sample_faces.CROP_SIZE, align=False)}
    library = occluders.OccluderLibrary.load()
    found_faces = {}  # face id -> its face in the photo (None: not found), found once per face
    for row in rows:
        face_id = row["face_id"]
        photo = _source_photo(row, sample)
        if photo is None:
            continue
        if face_id not in found_faces:
            found = faces.find_faces(photo)
            found_faces[face_id] = found[0] if found else None
        if found_faces[face_id] is None:
            continue
        category = ID_TO_CATEGORY[row["category"]]
        for cross in (False, True) if crossing else (False,):
            found, image = found_faces[face_id], photo
            if cross:
                image, pad = framed(photo)
                found = _moved(found, pad)
            face = faces.Face(face_id, image, found.box, "photo")
            digest = hashlib.sha1(f"{seed}:{row['id']}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            found_parts = compose.occlude(face, library.items[category], rng, float(cross))
            if found_parts is None:
                continue
            parts = found_parts[0]
            mask = parts["mask"][..., 0] > 0
            window = faces.face_bounds(found.box, image.shape)  # twice the box
            if cross:  # and the whole occluder
                ys, xs = np.nonzero(mask)
                window = (
                    min(window[0], int(xs.min())),
                    min(window[1], int(ys.min())),
                    max(window[2], int(xs.max()) + 1),
                    max(window[3], int(ys.max()) + 1),
                )
            yield {
                "id": f"{row['id']}-crossing" if cross else row["id"],
                "category": row["category"],
                "gender": row.get("gender", -1),
                "occluded": parts["occluded"],
                "original": image,
                "mask": mask,
                "window": window,
                "crosses": bool((mask & ~aligned_window(found, image.shape)).any()),
            }


def framed(photo: np.ndarray, blur: float = 1 / 12) -> tuple[np.ndarray, int]:
    """`photo` in the middle of a canvas twice its longer side, the rest its edge pixels drawn
    outwards and blurred (sigma `blur` of the side; the photo's edge blends in over 4 px), as
    `bench/face_alignment.py` frames faces: room for an occluder that reaches past the face, and
    no mirrored face for the face search to find; and the photo's offset in it."""
    h, w = photo.shape[:2]
    pad = max(h, w) // 2
    grown = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    out = cv2.GaussianBlur(grown, (0, 0), blur * max(h, w)).astype(np.float32)
    ramp_y = np.clip((np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5) / 4, 0, 1)
    ramp_x = np.clip((np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5) / 4, 0, 1)
    alpha = np.minimum(ramp_y[:, None], ramp_x[None, :])[..., None]
    inner = out[pad : pad + h, pad : pad + w]
    out[pad : pad + h, pad : pad + w] = alpha * photo + (1 - alpha) * inner
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), pad


def _moved(found, offset: int):
    """A `FoundFace` of a photo, in a canvas where the photo's top-left corner is at `offset`."""
    keypoints = None if found.keypoints is None else found.keypoints + offset
    box = (found.box[0] + offset, found.box[1] + offset, *found.box[2:])
    return dataclasses.replace(found, box=box, keypoints=keypoints)


def aligned_window(found, shape) -> np.ndarray:
    """HxW bool: the photo pixels inside `found`'s crop, framed as `Reconstructor` frames it by
    default (by keypoints; a square around the box without)."""
    size = 64  # any: the window in the photo does not depend on the crop's resolution
    inverse = found.alignment(size).inverse
    ones = np.ones((size, size), np.float32)
    return cv2.warpAffine(ones, inverse, (shape[1], shape[0]), flags=cv2.INTER_LINEAR) > 0.5


def score_photos(
    reconstruct: Callable[[np.ndarray, np.ndarray], np.ndarray],
    examples: Iterator[dict],
    baselines: tuple[str, ...] = METHODS,
    lpips: LPIPS | None = None,
    smooth_steps: int | str | None = "classical",
    structure: StructureError | None = None,
) -> list[dict]:
    """Records in the form of `evaluate.evaluate`'s, for `report.aggregate`: each method's PSNR,
    SSIM (over the face square and over the hole in it) and LPIPS of the face square, at the
    photo's resolution. `reconstruct(occluded, mask) -> photo` is the model's path. With
    `smooth_steps` None (solved) or a number (relaxed), the smooth fills are made as
    `Reconstructor(base_steps=smooth_steps)` makes its base, so that their rows are the model's
    starting point; "classical" (the default): as `classical_inpaint` makes them.

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
            if smooth_steps != "classical" and name in SMOOTH_FILLS:
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
                **({"crosses": ex["crosses"]} if "crosses" in ex else {}),
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
