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

    def __init__(self, *, pairs_dir: str, image_size: int, beam: bool = False, **kwargs):
        self._pairs_dir = pairs_dir
        self._size = image_size
        self._beam = beam  # examples made by a Beam pipeline (TFDS's Beam writer) or in-process
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
        rows = [row for row in read_index(self._pairs_dir) if row["split"] == split]
        if self._beam:
            import apache_beam as beam

            return beam.Create(rows) | beam.Map(_keyed_example, self._pairs_dir)
        return (_keyed_example(row, self._pairs_dir) for row in rows)


def _keyed_example(row: dict, pairs_dir: str) -> tuple[str, dict]:
    """(key, features) of one staged pair: the one reader of both writers."""
    return row["id"], {
        "id": row["id"],
        "original": _read_rgb(pairs_dir, "original", row["id"]),
        "occluded": _read_rgb(pairs_dir, "occluded", row["id"]),
        "mask": _read_mask(pairs_dir, row["id"]),
        "category": row["category"],
        "bbox": np.asarray(row["bbox"], np.float32),
        "gender": row["gender"],
        "age": row["age"],
        "race": row["race"],
    }


def read_index(pairs_dir: str) -> list[dict]:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(pairs_dir, "index.jsonl"), "r") as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_png(path: str, flags: int) -> np.ndarray:
    """A staged PNG, local or on a filesystem TensorFlow reads (gs://, hdfs://)."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = np.frombuffer(f.read(), np.uint8)
    except tf.errors.OpError:
        data = np.zeros(0, np.uint8)
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise OSError(f"could not read staged image {path}")
    return image


def _read_rgb(pairs_dir: str, kind: str, example_id: str) -> np.ndarray:
    path = os.path.join(pairs_dir, kind, f"{example_id}.png")
    return cv2.cvtColor(_read_png(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _read_mask(pairs_dir: str, example_id: str) -> np.ndarray:
    m = _read_png(os.path.join(pairs_dir, "mask", f"{example_id}.png"), cv2.IMREAD_GRAYSCALE)
    return (m > 127).astype(np.uint8)[..., None]  # staged as 0/255 for viewing; stored as 0/1


def write(pairs_dir: str, data_dir: str, image_size: int, beam_options=None) -> str:
    """Builds the TFRecord shards from staged pairs into `data_dir`; returns the dataset dir.

    With `beam_options` (an apache_beam PipelineOptions) TFDS's Beam writer makes them on that
    pipeline's runner; the records are the same either way."""
    tfds.disable_progress_bar()
    builder = OccludedFaces(
        pairs_dir=pairs_dir,
        image_size=image_size,
        data_dir=data_dir,
        beam=beam_options is not None,
    )
    config = tfds.download.DownloadConfig(try_download_gcs=False, beam_options=beam_options)
    with contextlib.redirect_stdout(io.StringIO()):  # tfds prints a "downloading" banner
        builder.download_and_prepare(download_config=config)
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
