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

import dataclasses
import json
import os
import shutil
import time

import cv2
import numpy as np
import tqdm

from data_pipeline import atomic, build_steps, faces, images, occluders, sample_faces, tfds_builder

BuildError = build_steps.BuildError
coco_split = build_steps.coco_split


def assign_splits(persons: dict[str, str], genders: dict[str, int], seed: int) -> dict[str, str]:
    """face id -> "train" | "validation" | "test" (see `data_pipeline.splits`)."""
    return build_steps.plan(persons, genders, seed).split


def prepare_out(out: str, overwrite: bool) -> str:
    """--out as an absolute path whose parent exists; BuildError when it cannot be written."""
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


def check_args(size: int, per_face: int) -> None:
    if size < 32 or per_face < 1:
        raise BuildError(f"expected --size >= 32 and --per_face >= 1, got {size} and {per_face}")


def load_library(library_dir: str) -> occluders.OccluderLibrary:
    library = occluders.OccluderLibrary.load(library_dir)
    try:
        library.check()
    except ValueError as e:
        raise BuildError(str(e)) from None
    return library


def list_photos(faces_arg: str) -> tuple[str, list[str]]:
    """(the face folder, its photos in path order) for --faces; BuildError when there are none."""
    root = os.path.abspath(faces_arg)
    if not os.path.isdir(root):
        raise BuildError(f"--faces={faces_arg}: expected a folder of photos or 'sample'")
    paths = images.list_images(root)
    if not paths:
        raise BuildError(f"--faces={faces_arg}: no .jpg/.jpeg/.png/.webp/.bmp files found")
    return root, paths


def _face_stream(faces_arg: str, size: int, skips: faces.SkipLog, workers: int, align: bool):
    """(photo count, face iterator) for --faces."""
    if faces_arg == "sample":
        face_list = sample_faces.load(size, align=align)
        return len(face_list), iter(face_list)
    root, paths = list_photos(faces_arg)
    build_steps.read_labels(root)  # a garbled CelebA file is a BuildError before any pixel
    face_iter = faces.iter_faces(root, size, skips=skips, paths=paths, workers=workers, align=align)
    return len(paths), face_iter


def write_files(root: str, files: dict[str, bytes | str]) -> None:
    """Writes {relative path: bytes or text} under `root`; a file that cannot be written (full
    disk, no permission) is an OSError naming it."""
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as e:
            raise OSError(f"could not write {path} (disk full, or no permission?): {e}") from None


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
    The steps are `data_pipeline.build_steps`', which `data_pipeline.beam_build` runs on Beam.
    """
    check_args(size, per_face)
    start = time.time()
    out = prepare_out(out, overwrite)
    library = load_library(library_dir)
    skips = faces.SkipLog()
    n_inputs, face_iter = _face_stream(faces_arg, size, skips, workers, align)

    with atomic.folder(out) as tmp:  # never leave a half-written dataset behind
        counts = _build_into(tmp, face_iter, n_inputs, library, size, per_face, seed, skips,
                             progress)  # fmt: skip
        summary = make_summary(counts, skips, library, faces_arg, out, size, per_face, seed, align,
                               n_inputs, time.time() - start)  # fmt: skip
        write_files(tmp, {"summary.json": json.dumps(summary, indent=1)})
    return summary


def make_summary(counts, skips, library, faces_arg, out, size, per_face, seed, align, n_inputs,
                 seconds) -> dict:  # fmt: skip
    """summary.json: the counts of `build_steps.finish`, the skips and the build's arguments."""
    return {
        "faces_used": counts["faces_used"],
        "skipped": dict(skips.counts.most_common()),
        "skipped_examples": dict(skips.examples),
        **{k: v for k, v in counts.items() if k != "faces_used"},
        "occluder_variants": library.counts(),
        "faces": faces_arg,
        "out": out,
        "size": size,
        "per_face": per_face,
        "seed": seed,
        "align": align,
        "inputs": n_inputs,
        "seconds": round(seconds, 1),
    }


def _build_into(tmp, face_iter, n_inputs, library, size, per_face, seed, skips, progress) -> dict:
    # Stage 1: every usable face, cropped (and aligned) once, staged as PNG in faces/.
    staged = _stage_faces(tmp, face_iter, n_inputs, skips, progress)
    if not staged:
        reasons = ", ".join(f"{r}: {n}" for r, n in skips.counts.most_common()) or "none"
        raise BuildError(f"no usable face among {n_inputs} photos (skipped: {reasons})")
    # Stage 2: the split, by person, and the category schedule, over the faces that are there.
    persons = {face.id: face.person_id for face, _ in staged}
    plan = build_steps.plan(persons, {face.id: face.gender for face, _ in staged}, seed)
    # Stage 3: the occluded examples, each seeded by its id.
    rows, entries = [], []
    for face in _unstaged(staged):
        for ex in build_steps.examples_of(face, plan.rank[face.id], library, seed, per_face):
            files, row, entry = build_steps.record_of(ex, plan.split[face.id], persons[face.id])
            write_files(tmp, files)
            rows.append(row)
            entries.append(entry)
    texts, counts = build_steps.finish(rows, entries)
    n_persons = len(set(persons.values()))
    build_steps.check_splits(counts["examples_per_split"], counts["faces_used"], n_persons)
    write_files(tmp, texts)
    tfds_builder.write(os.path.join(tmp, "pairs"), os.path.join(tmp, "tfds"), size)
    shutil.rmtree(os.path.join(tmp, "tfds", "downloads"), ignore_errors=True)
    return counts


def _stage_faces(tmp, face_iter, n_inputs, skips, progress) -> list[tuple[faces.Face, str]]:
    """Writes each face crop to `faces/<id>.png`; returns (face without pixels, path) pairs."""
    os.makedirs(os.path.join(tmp, "faces"))
    staged = []
    bar = tqdm.tqdm(total=n_inputs, unit="photo", desc="faces", disable=not progress)
    for face in _ticking(face_iter, bar, skips):
        write_files(tmp, build_steps.face_files(face))
        path = os.path.join(tmp, "faces", f"{face.id}.png")
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
