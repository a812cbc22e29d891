"""Batches from the `occluded_faces` TFDS set (built by `data_pipeline`), this process's share.

Each process reads `tfds.split_for_jax_process(split)`; the order is a seeded shuffle repeated
forever, so skipping `start_step` batches reproduces the position after a restart.

The hole is the set's exact mask, or (`config.data.mask_source`) the detector's mask or box mask
from the mask cache that `launch/cache_masks.py` writes (TFRecords of PNG masks keyed by example
id; format in docs/detector.md), or the union of exact and detector masks; optionally dilated.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_KEYS = ("occluded", "original", "mask")


def _dataset(config, split: str, shuffle: bool):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # TensorFlow must not take accelerator memory
    from data_pipeline import tfds_builder

    if not config.data.tfds_data_dir:
        raise ValueError(
            "config.data.source='tfds' needs config.data.tfds_data_dir: the --out folder of the "
            "dataset build (see docs/data.md)"
        )
    builder = tfds.builder_from_directory(tfds_builder.dataset_dir(config.data.tfds_data_dir))
    read_config = tfds.ReadConfig(shuffle_seed=config.data.seed)
    ds = builder.as_dataset(split=split, shuffle_files=shuffle, read_config=read_config)
    size = config.image_size

    def select(ex):
        out = {k: ex[k] for k in (*_KEYS, "id")}
        if out["original"].shape[0] != size:
            raise ValueError(
                f"the TFDS set holds {out['original'].shape[0]}px images but "
                f"config.image_size={size}"
            )
        return out

    ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(_hole_fn(config), num_parallel_calls=tf.data.AUTOTUNE)


def _mask_cache_table(cache_dir: str):
    """(id -> row table, detector mask PNGs, box mask PNGs) from the cache's TFRecord shards."""
    import os

    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(cache_dir, "masks.tfrecord-*")))
    if not files:
        raise FileNotFoundError(
            f"no detector mask cache in {cache_dir!r} (expected masks.tfrecord-* shards from "
            "launch/cache_masks.py)"
        )
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("id", "mask", "box_mask")}
    ids, masks, boxes = [], [], []
    for record in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(record, spec)
        ids.append(ex["id"].numpy())
        masks.append(ex["mask"].numpy())
        boxes.append(ex["box_mask"].numpy())
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.range(len(ids), dtype=tf.int64)),
        default_value=-1,
    )
    return table, tf.constant(masks), tf.constant(boxes)


def _hole_fn(config):
    """The map that replaces each example's mask by the configured hole."""
    import os

    import tensorflow as tf

    source = config.data.get("mask_source", "gt")
    dilation = int(config.data.get("mask_dilation", 0))
    cache = None
    if source != "gt":
        cache_dir = config.data.get("mask_cache_dir", "") or os.path.join(
            config.data.tfds_data_dir, "mask_cache"
        )
        cache = _mask_cache_table(cache_dir)

    def hole(ex):
        mask = ex["mask"]
        if cache is not None:
            table, masks, boxes = cache
            row = table.lookup(ex["id"])
            tf.debugging.assert_non_negative(
                row, message="an example id is missing from the detector mask cache"
            )
            pngs = boxes if source == "detector_box" else masks
            detected = tf.io.decode_png(tf.gather(pngs, row), channels=1)
            mask = tf.maximum(mask, detected) if source == "union" else detected
        if dilation:
            k = 2 * dilation + 1
            grown = tf.nn.max_pool2d(tf.cast(mask[None], tf.float32), k, 1, "SAME")[0]
            mask = tf.cast(grown > 0, tf.uint8)
        return {**{k: ex[k] for k in ("occluded", "original")}, "mask": tf.cast(mask, tf.uint8)}

    return hole


def batches(config, start_step: int, local_batch: int, process_index: int) -> Iterator[dict]:
    """Infinite local batches starting at global step `start_step`."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    del process_index  # split_for_jax_process reads it from JAX
    split = tfds.split_for_jax_process(config.data.split, drop_remainder=True)
    ds = _dataset(config, split, shuffle=True)
    ds = ds.repeat().shuffle(config.data.shuffle_buffer, seed=config.data.seed)
    ds = ds.batch(local_batch, drop_remainder=True).skip(start_step)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    for batch in tfds.as_numpy(ds):
        yield {k: np.asarray(v) for k, v in batch.items()}


def first_examples(config, count: int) -> dict[str, np.ndarray]:
    """The first `count` examples of the validation split (the train split if none)."""
    import tensorflow_datasets as tfds

    try:
        ds = _dataset(config, "validation", shuffle=False)
    except (KeyError, ValueError):
        ds = _dataset(config, config.data.split, shuffle=False)
    items = list(tfds.as_numpy(ds.take(count)))
    return {k: np.stack([it[k] for it in items]) for k in _KEYS}
