"""Builds the occluded-faces dataset from a face folder (or the sample set) into one output folder.

Output layout (`<out>` is only created, by a rename, once everything below is complete):
    pairs/{original,occluded,mask}/<id>.png, pairs/index.jsonl   every example, staged as PNG
    coco/{train,test}/<id>.png, coco/annotations/instances_{train,test}.json   detection set
    tfds/occluded_faces/1.0.0/   inpainting set (TFRecord shards; read with tfds_builder.load)
    summary.json                 what `summarize` prints

Splits are by face, so no face is in two splits: the inpainting split is train/validation/test
80/10/10, stratified by gender where labelled; the detection test split is the inpainting test
split and its train split the rest (90/10), so a detector never trains on an inpainting test face.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable

import cv2
import numpy as np
import tqdm

from data_pipeline import (
    coco,
    compose,
    difference,
    faces,
    images,
    occluders,
    sample_faces,
    tfds_builder,
)
from data_pipeline.categories import CATEGORIES, ID_TO_CATEGORY

# Position i of the faces (sorted by gender, then a seeded hash) goes to _PATTERN[i % 10]: every
# stratum gets 80/10/10 and three faces already fill all three splits.
_PATTERN = ("train", "test", "validation", *("train",) * 7)


class BuildError(Exception):
    """A user error (bad --faces or --out, no usable face); the CLI prints it, no traceback."""


def assign_splits(face_ids: Iterable[str], genders: dict[str, int], seed: int) -> dict[str, str]:
    """face id -> "train" | "validation" | "test", stratified by gender (-1 = unknown)."""

    def key(fid: str) -> tuple[int, str]:
        return genders.get(fid, -1), hashlib.sha1(f"{seed}:{fid}".encode()).hexdigest()

    ordered = sorted(set(face_ids), key=key)
    return {fid: _PATTERN[i % len(_PATTERN)] for i, fid in enumerate(ordered)}


def coco_split(split: str) -> str:
    return "test" if split == "test" else "train"


def _prepare_out(out: str, overwrite: bool) -> str:
    out = os.path.abspath(out)
    if os.path.isfile(out):
        raise BuildError(f"--out={out} is a file; expected a new or empty directory")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise BuildError(f"--out={out} is not empty; choose a new directory or pass --overwrite")
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the parent folder of --out={out}: {e.strerror}") from None
    return out


def _face_stream(faces_arg: str, size: int, skips: faces.SkipLog, workers: int):
    """(face count estimate, face iterator, id -> gender for the split) for --faces."""
    if faces_arg == "sample":
        face_list = sample_faces.load(size)
        return len(face_list), iter(face_list), {f.id: f.gender for f in face_list}
    root = os.path.abspath(faces_arg)
    if not os.path.isdir(root):
        raise BuildError(f"--faces={faces_arg}: expected a folder of photos or 'sample'")
    paths = images.list_images(root)
    if not paths:
        raise BuildError(f"--faces={faces_arg}: no .jpg/.jpeg/.png/.webp/.bmp files found")
    celeba = faces.read_celeba_gender(root)
    # the split needs every face's stratum before any pixel is read: the labels are in the names
    genders = {
        faces.face_id(root, p): faces.labels_from_name(p, celeba).get("gender", -1) for p in paths
    }
    face_iter = faces.iter_faces(root, size, skips=skips, paths=paths, workers=workers)
    return len(paths), face_iter, genders


def _write_pair(pairs: str, ex: dict) -> None:
    for kind in ("original", "occluded"):
        bgr = cv2.cvtColor(ex[kind], cv2.COLOR_RGB2BGR)
        cv2.imwrite(os.path.join(pairs, kind, f"{ex['id']}.png"), bgr)
    cv2.imwrite(os.path.join(pairs, "mask", f"{ex['id']}.png"), ex["mask"][..., 0] * 255)


def build_dataset(
    faces_arg: str,
    out: str,
    size: int = faces.DEFAULT_SIZE,
    per_face: int = 1,
    seed: int = 0,
    library_dir: str = occluders.LIBRARY_DIR,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Builds everything into a temporary folder beside `out`, then renames it; returns the summary.

    `faces_arg` is a folder of photos (searched recursively) or "sample" for the committed set;
    `workers` processes read and crop the photos (the result does not depend on their number).
    """
    if size < 32 or per_face < 1:
        raise BuildError(f"expected --size >= 32 and --per_face >= 1, got {size} and {per_face}")
    start = time.time()
    out = _prepare_out(out, overwrite)
    library = occluders.OccluderLibrary.load(library_dir)
    try:
        library.check()
    except ValueError as e:
        raise BuildError(str(e)) from None
    skips = faces.SkipLog()
    n_inputs, face_iter, genders = _face_stream(faces_arg, size, skips, workers)

    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=os.path.dirname(out))
    try:
        summary = _build_into(
            tmp, face_iter, n_inputs, genders, library, size, per_face, seed, skips, progress
        )
        summary.update(
            faces=faces_arg,
            out=out,
            size=size,
            per_face=per_face,
            seed=seed,
            inputs=n_inputs,
            seconds=round(time.time() - start, 1),
        )
        with open(os.path.join(tmp, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
        if os.path.exists(out):
            trash = tempfile.mkdtemp(
                prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out)
            )
            os.replace(out, os.path.join(trash, "old"))
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written dataset behind
        raise
    return summary


def _build_into(
    tmp, face_iter, n_inputs, genders, library, size, per_face, seed, skips, progress
) -> dict:
    pairs = os.path.join(tmp, "pairs")
    for kind in ("original", "occluded", "mask"):
        os.makedirs(os.path.join(pairs, kind))
    splits = assign_splits(genders, genders, seed)
    writers = {s: coco.CocoWriter(tmp, s) for s in ("train", "test")}
    per_cat: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    ious, used_faces = [], set()
    bar = tqdm.tqdm(total=n_inputs, unit="photo", desc="faces", disable=not progress)

    with open(os.path.join(pairs, "index.jsonl"), "w", encoding="utf-8") as index:
        for ex in compose.generate(_ticking(face_iter, bar, skips), library, seed, per_face):
            split = splits[ex["face_id"]]
            _write_pair(pairs, ex)
            writers[coco_split(split)].add(ex)
            iou = difference.iou(
                difference.mask_from_difference(ex["original"], ex["occluded"]), ex["mask"]
            )
            ious.append(iou)
            row = {
                "id": ex["id"],
                "face_id": ex["face_id"],
                "split": split,
                "category": int(ex["category"]),
                "bbox": [float(v) for v in ex["bbox"]],
                "gender": int(ex["gender"]),
                "age": int(ex["age"]),
                "race": int(ex["race"]),
                "occluder": ex["occluder"],
                "mask_area": int(ex["mask"].sum()),
                "difference_iou": round(iou, 4),
            }
            index.write(json.dumps(row) + "\n")
            per_cat[ID_TO_CATEGORY[row["category"]]][split] += 1
            used_faces.add(ex["face_id"])
    bar.close()
    if not used_faces:
        reasons = ", ".join(f"{r}: {n}" for r, n in skips.counts.most_common()) or "none"
        raise BuildError(f"no usable face among {n_inputs} photos (skipped: {reasons})")
    for w in writers.values():
        w.close()
    tfds_builder.write(pairs, os.path.join(tmp, "tfds"), size)
    shutil.rmtree(os.path.join(tmp, "tfds", "downloads"), ignore_errors=True)
    split_counts = collections.Counter()
    for c in per_cat.values():
        split_counts.update(c)
    return {
        "faces_used": len(used_faces),
        "skipped": dict(skips.counts.most_common()),
        "skipped_examples": dict(skips.examples),
        "examples": sum(split_counts.values()),
        "examples_per_split": {s: split_counts[s] for s in tfds_builder.SPLITS},
        "coco_images": {s: len(w.images) for s, w in writers.items()},
        "examples_per_category": {c: dict(per_cat[c]) for c in CATEGORIES},
        "difference_mask_iou_mean": round(float(np.mean(ious)), 4),
        "occluder_variants": library.counts(),
    }


def _ticking(face_iter, bar, skips):
    """Advances the progress bar by every photo read, used or skipped."""
    for done, face in enumerate(face_iter, 1):
        bar.update(done + skips.total - bar.n)
        yield face
    bar.update(bar.total - bar.n if bar.total else 0)


def summarize(summary: dict) -> str:
    """The closing note of a build, as printed by launch/build_dataset.py."""
    lines = [
        f"dataset written to {summary['out']} in {summary['seconds']} s",
        f"faces: {summary['inputs']} inputs, {summary['faces_used']} used, "
        f"{sum(summary['skipped'].values())} skipped",
    ]
    for reason, n in summary["skipped"].items():
        lines.append(f"  skipped {n:>5}  {reason}")
    per_split = summary["examples_per_split"]
    lines.append(
        f"examples: {summary['examples']} "
        f"(train {per_split['train']}, validation {per_split['validation']}, "
        f"test {per_split['test']}; COCO train {summary['coco_images']['train']}, "
        f"test {summary['coco_images']['test']})"
    )
    lines.append(f"  {'category':<11} {'train':>6} {'val':>6} {'test':>6}")
    for cat, c in summary["examples_per_category"].items():
        lines.append(
            f"  {cat:<11} {c.get('train', 0):>6} {c.get('validation', 0):>6} {c.get('test', 0):>6}"
        )
    lines.append(
        f"difference-mask IoU vs exact masks (mask_from_difference): mean "
        f"{summary['difference_mask_iou_mean']:.3f}"
    )
    return "\n".join(lines)
