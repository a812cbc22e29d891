"""Builds the occluded-faces dataset from a face folder (or the sample set) into one output folder.

Output layout (`<out>` is only created, by a rename, once everything below is complete):
    pairs/{original,occluded,mask}/<id>.png, pairs/index.jsonl   every example, staged as PNG
    faces/<face id>.png          every usable face crop (aligned unless --noalign), once
    coco/{train,test}/<id>.png, coco/annotations/instances_{train,test}.json   detection set
    tfds/occluded_faces/1.0.0/   inpainting set (TFRecord shards; read with tfds_builder.load)
    summary.json                 what `summarize` prints

Splits are by person (`data_pipeline.splits`), so no person is in two splits: the inpainting split
is train/validation/test 80/10/10 of the faces, stratified by gender where labelled; the
detection test split is the inpainting test split and its train split the rest (90/10), so a
detector never trains on an inpainting test person.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import time

import cv2
import numpy as np
import tqdm

from data_pipeline import (
    atomic,
    coco,
    compose,
    difference,
    faces,
    images,
    occluders,
    sample_faces,
    tfds_builder,
)
from data_pipeline import splits as splits_lib
from data_pipeline.categories import CATEGORIES, ID_TO_CATEGORY


class BuildError(Exception):
    """A user error (bad --faces or --out, no usable face); the CLI prints it, no traceback."""


def assign_splits(persons: dict[str, str], genders: dict[str, int], seed: int) -> dict[str, str]:
    """face id -> "train" | "validation" | "test" (see `data_pipeline.splits`)."""
    return splits_lib.assign_splits(persons, genders, seed)


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


def _face_stream(faces_arg: str, size: int, skips: faces.SkipLog, workers: int, align: bool):
    """(face count estimate, face iterator, id -> gender, id -> person) for --faces; the split
    needs the last two before any pixel is read."""
    if faces_arg == "sample":
        face_list = sample_faces.load(size, align=align)
        genders = {f.id: f.gender for f in face_list}
        return len(face_list), iter(face_list), genders, {f.id: f.person_id for f in face_list}
    root = os.path.abspath(faces_arg)
    if not os.path.isdir(root):
        raise BuildError(f"--faces={faces_arg}: expected a folder of photos or 'sample'")
    paths = images.list_images(root)
    if not paths:
        raise BuildError(f"--faces={faces_arg}: no .jpg/.jpeg/.png/.webp/.bmp files found")
    try:
        celeba = faces.read_celeba_gender(root)
        celeba_persons = faces.read_celeba_persons(root)
    except ValueError as e:
        raise BuildError(str(e)) from None
    # the labels and persons are in the file names (or CelebA's files beside them)
    genders, persons = {}, {}
    for p in paths:
        fid = faces.face_id(root, p)
        genders[fid] = faces.labels_from_name(p, celeba).get("gender", -1)
        persons[fid] = celeba_persons.get(os.path.basename(p), fid)
    face_iter = faces.iter_faces(root, size, skips=skips, paths=paths, workers=workers, align=align)
    return len(paths), face_iter, genders, persons


def _imwrite(path: str, image: np.ndarray) -> None:
    """`cv2.imwrite`, but a file it cannot write (full disk, no permission) is an error."""
    if not cv2.imwrite(path, image):
        raise OSError(f"could not write {path} (disk full, or no permission?)")


def _write_pair(pairs: str, ex: dict) -> None:
    for kind in ("original", "occluded"):
        bgr = cv2.cvtColor(ex[kind], cv2.COLOR_RGB2BGR)
        _imwrite(os.path.join(pairs, kind, f"{ex['id']}.png"), bgr)
    _imwrite(os.path.join(pairs, "mask", f"{ex['id']}.png"), ex["mask"][..., 0] * 255)


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
    align: bool = True,
) -> dict:
    """Builds everything into a temporary folder beside `out`, then renames it; returns the summary.

    `faces_arg` is a folder of photos (searched recursively) or "sample" for the committed set;
    `workers` processes read and crop the photos (the result does not depend on their number);
    with `align` every face is aligned to the template by its keypoints (`data_pipeline.align`).
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
    n_inputs, face_iter, genders, persons = _face_stream(faces_arg, size, skips, workers, align)

    with atomic.folder(out) as tmp:  # never leave a half-written dataset behind
        summary = _build_into(
            tmp, face_iter, n_inputs, genders, persons, library, size, per_face, seed, skips,
            progress,
        )  # fmt: skip
        summary.update(
            faces=faces_arg,
            out=out,
            size=size,
            per_face=per_face,
            seed=seed,
            align=align,
            inputs=n_inputs,
            seconds=round(time.time() - start, 1),
        )
        with open(os.path.join(tmp, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    return summary


def _build_into(
    tmp, face_iter, n_inputs, genders, persons, library, size, per_face, seed, skips, progress
) -> dict:
    pairs = os.path.join(tmp, "pairs")
    for kind in ("original", "occluded", "mask"):
        os.makedirs(os.path.join(pairs, kind))
    # Stage 1: every usable face, cropped (and aligned) once, staged as PNG in faces/.
    staged = _stage_faces(os.path.join(tmp, "faces"), face_iter, n_inputs, skips, progress)
    if not staged:
        reasons = ", ".join(f"{r}: {n}" for r, n in skips.counts.most_common()) or "none"
        raise BuildError(f"no usable face among {n_inputs} photos (skipped: {reasons})")
    # Stage 2: the split, by person, over the faces that are there.
    usable = {face.id for face, _ in staged}
    splits = assign_splits(
        {fid: p for fid, p in persons.items() if fid in usable},
        {fid: g for fid, g in genders.items() if fid in usable},
        seed,
    )
    # Stage 3: the occluded examples.
    writers = {s: coco.CocoWriter(tmp, s) for s in ("train", "test")}
    per_cat: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    ious, used_faces = [], set()
    with open(os.path.join(pairs, "index.jsonl"), "w", encoding="utf-8") as index:
        for ex in compose.generate(_unstaged(staged), library, seed, per_face):
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
                "person": persons[ex["face_id"]],
                "source": ex["source"],
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
    used_splits = {s for c in per_cat.values() for s in c}
    if missing := [s for s in tfds_builder.SPLITS if s not in used_splits]:
        raise BuildError(
            f"no usable face fell in the {' and '.join(missing)} split(s): {len(used_faces)} "
            f"usable faces of {len({persons[f] for f in usable})} persons are too few; add photos"
        )
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


def _stage_faces(folder, face_iter, n_inputs, skips, progress) -> list[tuple[faces.Face, str]]:
    """Writes each face crop to `folder/<id>.png`; returns (face without pixels, path) pairs."""
    os.makedirs(folder)
    staged = []
    bar = tqdm.tqdm(total=n_inputs, unit="photo", desc="faces", disable=not progress)
    for face in _ticking(face_iter, bar, skips):
        path = os.path.join(folder, f"{face.id}.png")
        _imwrite(path, cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
        staged.append((dataclasses.replace(face, image=np.zeros((0, 0, 3), np.uint8)), path))
    bar.close()
    return staged


def _unstaged(staged):
    """The staged faces with their pixels, read back one at a time."""
    for face, path in staged:
        yield dataclasses.replace(face, image=cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))


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
