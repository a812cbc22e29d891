"""The inpainting set: TFDS `GeneratorBasedBuilder` `occluded_faces`, written as TFRecord shards.

Features of each example:
    id        Text, "<face id>-<k>"
    original  Image HxWx3 uint8
    occluded  Image HxWx3 uint8
    mask      Image HxWx1 uint8, 1 = occluder (hole), 0 = face
    category  ClassLabel over ("background", *CATEGORIES): the index equals the class id (1..19)
    bbox      float32 [x, y, w, h] in pixels
    gender, age, race  int64, -1 when unknown (gender 0 = male, 1 = female)

The builder reads the staged pairs that `data_pipeline.build` writes (`pairs/index.jsonl` plus
PNGs); users read the result with `load(data_dir, split)`, which needs neither this class nor a
network.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import ClassVar

import cv2
import numpy as np
import tensorflow_datasets as tfds

from data_pipeline.categories import CATEGORIES

NAME = "occluded_faces"
VERSION = "1.0.0"
SPLITS = ("train", "validation", "test")


class OccludedFaces(tfds.core.GeneratorBasedBuilder):
    """Pairs of one face with and without an occluder, with the exact occluder mask."""

    name = NAME
    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "19 occluder categories, exact masks."}

    def __init__(self, *, pairs_dir: str, image_size: int, **kwargs):
        self._pairs_dir = pairs_dir
        self._size = image_size
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        s = self._size
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "original": tfds.features.Image(shape=(s, s, 3)),
                    "occluded": tfds.features.Image(shape=(s, s, 3)),
                    "mask": tfds.features.Image(shape=(s, s, 1)),
                    "category": tfds.features.ClassLabel(names=["background", *CATEGORIES]),
                    "bbox": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                    "gender": np.int64,
                    "age": np.int64,
                    "race": np.int64,
                }
            ),
            supervised_keys=None,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        for row in read_index(self._pairs_dir):
            if row["split"] != split:
                continue
            yield (
                row["id"],
                {
                    "id": row["id"],
                    "original": _read_rgb(self._pairs_dir, "original", row["id"]),
                    "occluded": _read_rgb(self._pairs_dir, "occluded", row["id"]),
                    "mask": _read_mask(self._pairs_dir, row["id"]),
                    "category": row["category"],
                    "bbox": np.asarray(row["bbox"], np.float32),
                    "gender": row["gender"],
                    "age": row["age"],
                    "race": row["race"],
                },
            )


def read_index(pairs_dir: str) -> list[dict]:
    with open(os.path.join(pairs_dir, "index.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_rgb(pairs_dir: str, kind: str, example_id: str) -> np.ndarray:
    path = os.path.join(pairs_dir, kind, f"{example_id}.png")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read staged image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_mask(pairs_dir: str, example_id: str) -> np.ndarray:
    path = os.path.join(pairs_dir, "mask", f"{example_id}.png")
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise OSError(f"could not read staged mask {path}")
    return (m > 127).astype(np.uint8)[..., None]  # staged as 0/255 for viewing; stored as 0/1


def write(pairs_dir: str, data_dir: str, image_size: int) -> str:
    """Builds the TFRecord shards from staged pairs into `data_dir`; returns the dataset dir."""
    tfds.disable_progress_bar()
    builder = OccludedFaces(pairs_dir=pairs_dir, image_size=image_size, data_dir=data_dir)
    with contextlib.redirect_stdout(io.StringIO()):  # tfds prints a "downloading" banner
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
    return os.path.join(data_dir, NAME, VERSION)


def dataset_dir(data_dir: str) -> str:
    """The TFDS version folder under `data_dir`: a build's --out, its tfds/ folder, or the folder
    itself. Raises FileNotFoundError naming what was looked for."""
    for cand in (
        data_dir,
        os.path.join(data_dir, NAME, VERSION),
        os.path.join(data_dir, "tfds", NAME, VERSION),
    ):
        if os.path.isfile(os.path.join(cand, "dataset_info.json")):
            return cand
    raise FileNotFoundError(
        f"no {NAME} dataset under {data_dir!r}: expected tfds/{NAME}/{VERSION}/dataset_info.json"
    )


def open_builder(builder_dir: str):
    """TFDS's read-only builder of a built dataset's version folder; ValueError naming the file
    when its metadata cannot be read (a garbled or hand-edited dataset_info.json)."""
    from google.protobuf import json_format

    try:
        return tfds.builder_from_directory(builder_dir)
    except (json_format.ParseError, ValueError, KeyError) as e:
        detail = " ".join(str(e).split())[:300]
        raise ValueError(
            f"{os.path.join(builder_dir, 'dataset_info.json')} cannot be read ({detail}); "
            "expected the metadata launch/build_dataset.py writes: build the dataset again"
        ) from None


def load(data_dir: str, split: str = "train", **as_dataset_kwargs):
    """The built dataset's `split` as a tf.data.Dataset of feature dicts (offline)."""
    builder = open_builder(dataset_dir(data_dir))
    return builder.as_dataset(split=split, **as_dataset_kwargs)


def load_numpy(data_dir: str, split: str = "train"):
    """Like `load`, as an iterable of numpy dicts (ids as bytes)."""
    return tfds.as_numpy(load(data_dir, split, shuffle_files=False))
