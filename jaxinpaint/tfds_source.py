"""Batches from the `occluded_faces` TFDS set (built by `data_pipeline`), this process's share.

Each process reads `tfds.split_for_jax_process(split)`; the order is a seeded shuffle repeated
forever, so skipping `start_step` batches reproduces the position after a restart.
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
        out = {k: ex[k] for k in _KEYS}
        if out["original"].shape[0] != size:
            raise ValueError(
                f"the TFDS set holds {out['original'].shape[0]}px images but "
                f"config.image_size={size}"
            )
        return out

    return ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)


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
