"""The dataset build's steps: one implementation that both drivers run.

`data_pipeline.build` runs them on one machine (a process pool for the photos), and
`data_pipeline.beam_build` as an Apache Beam pipeline (DirectRunner, Dataflow, Flink, Spark). Each
step is a function of one photo, one face or one example, or of the whole set's small metadata
(hashes, persons, index rows), so that a runner may spread the first kind over any number of
workers in any order and the output is the same:

    photo  --faces.read_face, faces.face_from-->  Face or skip reason (find, align, crop)
    faces' hashes in path order  --kept_faces-->  the faces that are no near-duplicate
    faces' ids, persons, genders  --plan-->  face id -> split (by person), schedule rank
    face   --examples_of-->  its `per_face` occluded examples, each seeded by its own id
    example  --record_of-->  its files (PNG bytes by relative path), index row, COCO entry
    all rows and COCO entries  --finish-->  index.jsonl, the COCO JSON, the summary

Examples are seeded by (seed, example id), never by a running count or worker order: the same
photo gives the same examples whichever machine, bundle or order it is processed in. What depends
on the whole set is decided once, in `plan`: the split by person, and the category schedule's
slot of each face (its rank among the sorted face ids), so that the categories stay balanced.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_util

from data_pipeline import coco, compose, difference, faces, occluders
from data_pipeline import splits as splits_lib
from data_pipeline.categories import CATEGORIES, ID_TO_CATEGORY

SPLITS = splits_lib.SPLITS
COCO_SPLITS = ("train", "test")


class BuildError(Exception):
    """A user error (bad --faces or --out, no usable face); the CLI prints it, no traceback."""


def coco_split(split: str) -> str:
    """The detection split of an inpainting split: its test split, and train for the rest."""
    return "test" if split == "test" else "train"


# -- photos -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhotoLabels:
    """What the face folder says about its photos besides their pixels (read once, small)."""

    root: str
    celeba_genders: dict[str, int]  # CelebA attribute file: file name -> gender
    celeba_persons: dict[str, str]  # CelebA identity file: file name -> person


def read_labels(root: str) -> PhotoLabels:
    """The CelebA attribute and identity files of a face folder (empty where there are none)."""
    try:
        return PhotoLabels(root, faces.read_celeba_gender(root), faces.read_celeba_persons(root))
    except ValueError as e:
        raise BuildError(str(e)) from None


def kept_faces(hashes: Iterable[tuple[str, int]]) -> set[str]:
    """The face ids that survive near-duplicate removal, given (face id, `faces.dhash`) in the
    folder's path order: a face is dropped when a kept face before it is within the
    `faces.Deduplicator`'s distance, exactly as `faces.iter_faces` drops it."""
    dedup = faces.Deduplicator()
    return {fid for fid, h in hashes if not dedup.seen(h)}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where each usable face goes, decided once over all of them: its split (by person) and its
    place in the category schedule (its rank among the face ids in sorted order)."""

    split: dict[str, str]  # face id -> "train" | "validation" | "test"
    rank: dict[str, int]  # face id -> 0..n-1


def plan(persons: dict[str, str], genders: dict[str, int], seed: int) -> Plan:
    """The `Plan` of the usable faces: face id -> person and gender (-1 = unknown)."""
    return Plan(
        splits_lib.assign_splits(persons, genders, seed),
        {fid: i for i, fid in enumerate(sorted(persons))},
    )


def _id_seed(seed: int, text: str) -> list[int]:
    """A generator seed of (seed, 64 bits of the SHA-256 of `text`): the same on every machine."""
    return [seed, int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")]


def examples_of(
    face: faces.Face,
    rank: int,
    library: occluders.OccluderLibrary,
    seed: int,
    per_face: int,
    categories: Sequence[str] = CATEGORIES,
) -> list[dict]:
    """The occluded examples of one face (`data_pipeline.compose`'s keys), ids "<face id>-<k>".

    The categories follow `compose.category_for`'s balanced schedule at the face's `rank` (its
    `Plan.rank`): every 19 consecutive slots hold each category once. Each example draws its
    occluder variant, placement and colour jitter from a generator seeded by (seed, its id); a
    face on which no variant of the category can be placed visibly gives no k-th example (as
    `compose.generate`)."""
    out = []
    for k in range(per_face):
        example_id = f"{face.id}-{k}"
        cat = compose.category_for(rank * per_face + k, seed, categories)
        rng = np.random.default_rng(_id_seed(seed, example_id))
        found = compose.occlude(face, library.items[cat], rng)
        if found is not None:
            out.append(compose.example(example_id, face, cat, *found))
    return out


def png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB (HxWx3) or gray (HxW) uint8 image, as `cv2.imwrite` writes them."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} {image.dtype} image as PNG")
    return data.tobytes()


def face_files(face: faces.Face) -> dict[str, bytes]:
    """The staged crop of a usable face: {relative path: PNG bytes}."""
    return {f"faces/{face.id}.png": png(face.image)}


def record_of(ex: dict, split: str, person: str) -> tuple[dict[str, bytes], dict, dict]:
    """(files {relative path: bytes}, index row, COCO entry) of one example in `split`.

    The COCO entry is the image and its annotation without ids; `finish` numbers them."""
    eid = ex["id"]
    files = {
        f"pairs/original/{eid}.png": png(ex["original"]),
        f"pairs/occluded/{eid}.png": png(ex["occluded"]),
        f"pairs/mask/{eid}.png": png(ex["mask"][..., 0] * 255),
    }
    files[f"coco/{coco_split(split)}/{eid}.png"] = files[f"pairs/occluded/{eid}.png"]
    iou = difference.iou(
        difference.mask_from_difference(ex["original"], ex["occluded"]), ex["mask"]
    )
    row = {
        "id": eid,
        "face_id": ex["face_id"],
        "person": person,
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
    h, w = ex["occluded"].shape[:2]
    rle = coco.encode_mask(ex["mask"])
    entry = {
        "split": coco_split(split),
        "image": {"file_name": f"{eid}.png", "width": w, "height": h, "example_id": eid},
        "annotation": {
            "category_id": int(ex["category"]),
            "segmentation": rle,
            "area": float(mask_util.area(rle)),
            "bbox": [float(v) for v in ex["bbox"]],
            "iscrowd": 0,
        },
    }
    return files, row, entry


# -- the whole set ----------------------------------------------------------------------------


def coco_document(split: str, entries: Iterable[dict]) -> dict:
    """The COCO instances JSON of one detection split, images numbered in example-id order."""
    images, annotations = [], []
    for n, e in enumerate(sorted(entries, key=lambda e: e["image"]["example_id"]), 1):
        images.append({"id": n, **e["image"]})
        annotations.append({"id": n, "image_id": n, **e["annotation"]})
    return {
        "info": {"description": f"occluded faces, {split} split", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco.COCO_CATEGORIES,
    }


def check_splits(examples_per_split: dict[str, int], n_faces: int, n_persons: int) -> None:
    """A dataset needs an example in every split: too few faces is a user error, named here."""
    if missing := [s for s in SPLITS if not examples_per_split.get(s)]:
        raise BuildError(
            f"no usable face fell in the {' and '.join(missing)} split(s): {n_faces} "
            f"usable faces of {n_persons} persons are too few; add photos"
        )


def finish(rows: Iterable[dict], entries: Iterable[dict]) -> tuple[dict[str, str], dict]:
    """({relative path: text} of index.jsonl and the COCO JSON files, summary counts) from every
    example's index row and COCO entry, in any order: rows are written sorted by example id."""
    rows = sorted(rows, key=lambda r: r["id"])
    by_split: dict[str, list[dict]] = {s: [] for s in COCO_SPLITS}
    for e in entries:
        by_split[e["split"]].append(e)
    texts = {"pairs/index.jsonl": "".join(json.dumps(r) + "\n" for r in rows)}
    for split, es in by_split.items():
        texts[f"coco/annotations/instances_{split}.json"] = json.dumps(coco_document(split, es))
    per_cat: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        per_cat[ID_TO_CATEGORY[r["category"]]][r["split"]] += 1
    per_split = collections.Counter(r["split"] for r in rows)
    counts = {
        "faces_used": len({r["face_id"] for r in rows}),
        "examples": len(rows),
        "examples_per_split": {s: per_split[s] for s in SPLITS},
        "coco_images": {s: len(by_split[s]) for s in COCO_SPLITS},
        "examples_per_category": {c: dict(per_cat[c]) for c in CATEGORIES},
        "difference_mask_iou_mean": round(float(np.mean([r["difference_iou"] for r in rows])), 4)
        if rows
        else 0.0,
    }
    return texts, counts
