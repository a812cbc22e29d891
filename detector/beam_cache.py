"""The mask cache as an Apache Beam pipeline: the detector over the examples on any Beam runner.

    python launch/cache_masks.py --detector=CKPT --dataset=DATA/tfds --out=DATA/mask_cache \
        --runner=DirectRunner [-- pipeline options]

The cache is `detector.mask_cache`'s, record for record: the examples are read where the runner
puts them (`tfds.beam.ReadFromTFDS`, shard by shard, or the image files of a folder), batched
(`beam.BatchElements`, `batch_size` images a call) into a `DoFn` that holds one
`predict.Detector` per worker and makes each record with `mask_cache.record_of`, and the records
are written by Beam's TFRecord sink into the shard names `mask_cache_files` lists.

Why a `DoFn` and not RunInference's PyTorch model handler: the handler runs the model and hands
back its raw outputs, while the cache's masks come from `predict.Detector.masks` (the threshold,
the chosen classes, the on-face filter, the union and box masks). The DoFn keeps that one
implementation, and it batches and loads the model once per worker as RunInference does.
"""

from __future__ import annotations

import json
import os
import pathlib

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipeline import atomic, images, mask_cache_files
from detector import mask_cache, sources

_COUNTS = ".beam-counts.json"  # the pipeline's counts for the driver (removed before the rename)


class _Detect(beam.DoFn):
    """A batch of (id, image) -> the cache record of each; the detector is made once per worker
    by `make_detector` (e.g. `functools.partial(predict.Detector.from_checkpoint, path)`)."""

    def __init__(self, make_detector, on_face: float):
        self._make, self._on_face = make_detector, on_face
        self._detector = None

    def setup(self):
        self._detector = self._make()

    def process(self, batch):
        detections = self._detector.masks([im for _, im in batch], on_face=self._on_face)
        for (example_id, _), detection in zip(batch, detections, strict=True):
            yield example_id, mask_cache.record_of(example_id, detection), bool(detection[0].any())


def _tfds_pair(example) -> tuple[str, object]:
    import numpy as np
    import tensorflow_datasets as tfds

    ex = tfds.as_numpy(example)
    example_id = ex["id"].decode("utf-8") if isinstance(ex["id"], bytes) else str(ex["id"])
    return example_id, np.asarray(ex["occluded"], np.uint8)


def _photo(path: str):
    """(id, image) of one image file, or (path, reason) on the "skipped" output."""
    try:
        yield pathlib.Path(path).stem, images.load_photo(path)
    except images.SkipImage as skip:
        yield beam.pvalue.TaggedOutput("skipped", (path, skip.reason))


def _examples(p, dataset, splits):
    """(PCollection of (id, HxWx3 uint8), PCollection of skipped (path, reason), total)."""
    tfds_dir = sources.find_tfds_dir(dataset)
    if tfds_dir is not None:
        import tensorflow_datasets as tfds

        builder, splits, total = sources.tfds_splits(tfds_dir, splits)
        reads = [
            p
            | f"read {s}" >> tfds.beam.ReadFromTFDS(builder, s, shuffle_files=False)
            | f"{s} as numpy" >> beam.Map(_tfds_pair)
            for s in splits
        ]
        skipped = p | "nothing skipped" >> beam.Create([])
        return reads | "all splits" >> beam.Flatten(), skipped, total
    files = [str(f) for f in sources.folder_images(pathlib.Path(dataset))]
    read = (
        p
        | "image files" >> beam.Create(files)
        | "spread files" >> beam.Reshuffle()
        | "read images" >> beam.FlatMap(_photo).with_outputs("skipped", main="pairs")
    )
    return read.pairs, read.skipped, len(files)


def _counts(records, skipped) -> str:
    ids = [example_id for example_id, _ in records]
    if len(set(ids)) != len(ids):
        raise ValueError("an example id occurs twice; expected unique ids")
    return json.dumps(
        {"num_with_mask": sum(m for _, m in records), "skipped": sorted(map(list, skipped))}
    )


def cache_masks(
    make_detector,
    dataset,
    cache_dir,
    *,
    splits=("all",),
    num_shards: int = 4,
    batch_size: int = 8,
    made_from: dict | None = None,
    on_face: float = 0.0,
    beam_args: list[str] | None = None,
) -> tuple[dict, list[tuple[str, str]]]:
    """`mask_cache.cache_masks` over the examples of `dataset` (a TFDS folder or a folder of
    images, as `sources.open_examples` reads it) on the Beam runner `beam_args` name; returns
    (the metadata written to mask_cache.json, the files skipped as not whole images)."""
    if num_shards < 1:
        raise ValueError(f"num_shards is {num_shards}; expected at least 1")
    detector = make_detector()  # bad checkpoints and flags fail here, before any pipeline
    meta = mask_cache.cache_meta(detector, made_from, on_face)
    del detector
    cache_dir = pathlib.Path(cache_dir)
    mask_cache._check_replaceable(cache_dir)
    if not pathlib.Path(dataset).is_dir():
        raise FileNotFoundError(f"{dataset} is not a folder; expected a TFDS dataset or images")
    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    with atomic.folder(cache_dir) as tmp:
        with beam.Pipeline(options=options) as p:
            pairs, skipped, _ = _examples(p, dataset, splits)
            records = (
                pairs
                | "batches"
                >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
                | "detect" >> beam.ParDo(_Detect(make_detector, on_face))
            )
            (
                records
                | "records" >> beam.Map(lambda r: r[1])
                | "shards"
                >> beam.io.WriteToTFRecord(
                    os.path.join(tmp, mask_cache_files.SHARD_PREFIX),
                    num_shards=num_shards,
                    shard_name_template="-SSSSS-of-NNNNN",
                )
            )
            (
                records
                | "ids" >> beam.Map(lambda r: (r[0], r[2]))
                | "all ids" >> beam.combiners.ToList()
                | "counts" >> beam.Map(_counts, beam.pvalue.AsList(skipped))
                | "write counts"
                >> beam.Map(lambda c: pathlib.Path(tmp, _COUNTS).write_text(c, encoding="utf-8"))
            )
        counts_path = pathlib.Path(tmp, _COUNTS)
        if counts_path.is_file():
            counts = json.loads(counts_path.read_text(encoding="utf-8"))
            counts_path.unlink()
        else:  # ToList over no examples gives one empty list; kept for runners that differ
            counts = {"num_with_mask": 0, "skipped": []}
        names = mask_cache_files.shard_names(num_shards)
        meta.update(num_with_mask=counts["num_with_mask"], num_shards=num_shards, shards=names)
        meta["num_examples"] = _count_records(tmp, names)
        text = json.dumps(meta, indent=2) + "\n"
        pathlib.Path(tmp, mask_cache_files.META_NAME).write_text(text, encoding="utf-8")
    return meta, [tuple(s) for s in counts["skipped"]]


def _count_records(folder, names) -> int:
    import tensorflow as tf

    return sum(
        sum(1 for _ in tf.data.TFRecordDataset(os.path.join(folder, n)).as_numpy_iterator())
        for n in names
    )
