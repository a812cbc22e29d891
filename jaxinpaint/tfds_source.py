"""Batches from the `occluded_faces` TFDS set (built by `data_pipeline`), this process's share.

Each process reads `tfds.split_for_jax_process(split)`, n examples. The order is epoch after
epoch of them, each shuffled with a seed of its own, from `(data.seed, epoch)`: the shard files
in a drawn order, interleaved, then a `shuffle_buffer` window. The epochs run back to back,
batches of L crossing their boundaries, so example `p` of the stream is example `p mod n` of
epoch `p // n`: a restart at step `s` starts at epoch `s·L // n` directly and reads through only
the start of that epoch, without decoding it (images stay PNG bytes until after the skip).
Resuming costs at most one epoch of record reads, whatever `s`.

The hole is the set's exact mask, or (`config.data.mask_source`) the detector's mask or box mask
from the mask cache that `launch/cache_masks.py` writes (TFRecords of PNG masks keyed by example
id; format in docs/detector.md), or the union of exact and detector masks; optionally dilated.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_KEYS = ("occluded", "original", "mask")
_EPOCH_SEEDS = 1_000_003  # epoch e of data.seed s shuffles with seed s * _EPOCH_SEEDS + e


def _builder(config):
    """The TFDS builder of `config.data.tfds_data_dir` (TensorFlow kept off the accelerators)."""
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
    stored = builder.info.features["original"].shape[0]
    if stored != config.image_size:
        raise ValueError(
            f"the TFDS set holds {stored}px images but config.image_size={config.image_size}"
        )
    return builder


def _records(builder, split: str, shuffle_seed=None):
    """The split's examples, the images still PNG bytes: in the set's stored order, or with the
    shard files in an order drawn from `shuffle_seed` (an int64 tensor is fine) and interleaved."""
    import tensorflow_datasets as tfds

    decoders = {k: tfds.decode.SkipDecoding() for k in _KEYS}
    read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, shuffle_reshuffle_each_iteration=False)
    return builder.as_dataset(
        split=split,
        shuffle_files=shuffle_seed is not None,
        read_config=read_config,
        decoders=decoders,
    )


def _decode_images(features, ex) -> dict:
    """{"id", "occluded", "original", "mask"} of a record, its PNGs decoded."""
    return {"id": ex["id"], **{k: features[k].decode_example(ex[k]) for k in _KEYS}}


def _decoded(config, builder, records):
    """Records -> examples with decoded images and the configured hole."""
    import tensorflow as tf

    features = builder.info.features
    ds = records.map(lambda ex: _decode_images(features, ex), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(_hole_fn(config), num_parallel_calls=tf.data.AUTOTUNE)


def _dataset(config, split: str):
    """The examples of `split` in the set's stored order (no shuffle, one epoch)."""
    builder = _builder(config)
    return _decoded(config, builder, _records(builder, split))


def _epochs_from(builder, split: str, num_examples: int, seed: int, buffer: int, start: int):
    """Shuffled epochs of the split back to back, from example `start` of that stream: whole
    epochs before it are not read at all, and the rest are skipped before any decoding."""
    import tensorflow as tf

    epoch, offset = divmod(start, num_examples)

    def shuffled(e):
        epoch_seed = seed * _EPOCH_SEEDS + e
        records = _records(builder, split, shuffle_seed=epoch_seed)
        return records.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)

    return tf.data.Dataset.range(epoch, tf.int64.max).flat_map(shuffled).skip(offset)


def _mask_cache_table(cache_dir: str):
    """(id -> row table, detector mask PNGs, box mask PNGs) from the shards the cache lists."""
    import tensorflow as tf

    from data_pipeline import mask_cache_files

    files = mask_cache_files.listed_shards(cache_dir)
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
    """Infinite local batches starting at global step `start_step` (see the module docstring)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    del process_index  # split_for_jax_process reads it from JAX
    split = tfds.split_for_jax_process(config.data.split, drop_remainder=True)
    builder = _builder(config)
    num_examples = builder.info.splits[split].num_examples
    if num_examples == 0:
        raise ValueError(f"this process's share of TFDS split {split!r} holds no example")
    stream = _epochs_from(
        builder,
        split,
        num_examples,
        config.data.seed,
        config.data.shuffle_buffer,
        start_step * local_batch,
    )
    ds = _decoded(config, builder, stream).batch(local_batch, drop_remainder=True)
    for batch in tfds.as_numpy(ds.prefetch(tf.data.AUTOTUNE)):
        yield {k: np.asarray(batch[k]) for k in _KEYS}


def first_examples(config, count: int) -> dict[str, np.ndarray]:
    """The first `count` examples of the validation split (the train split if none)."""
    import tensorflow_datasets as tfds

    try:
        ds = _dataset(config, "validation")
    except (KeyError, ValueError):
        ds = _dataset(config, config.data.split)
    items = list(tfds.as_numpy(ds.take(count)))
    return {k: np.stack([it[k] for it in items]) for k in _KEYS}
