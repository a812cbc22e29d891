"""Training input: per-process batches of occluded faces, addressable by training step.

`config.data.source` picks where examples come from; every source yields the same dict of numpy
arrays for this process's share of a global batch:

    occluded  [L, H, W, 3] uint8   the photo with the occluder composited in
    original  [L, H, W, 3] uint8   the face without it (the target)
    mask      [L, H, W, 1] uint8   1 = occluder / hole

Sources:
- `"generated"`: examples composited in memory by `data_pipeline` (the same code that writes the
  TFDS set), reproducible from `(config.data.seed, example index)`.
- `"tfds"`: the `occluded_faces` TFDS set, this process's slice (`tfds.split_for_jax_process`).
- `"synthetic"`: procedural smooth images with elliptical holes; needs nothing installed
  beyond numpy (tests, smoke runs).

Global step `s` uses global example indices `[s·G, (s+1)·G)`; process `p` of `P` reads the
`p`-th contiguous slice of `G / P`. The position to resume from is therefore just the step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np

Example = dict[str, np.ndarray]
SOURCES = ("generated", "tfds", "synthetic")
MASK_SOURCES = ("gt", "detector", "detector_box", "union")


def synthetic_example(seed: int, index: int, size: int) -> Example:
    """A smooth random image with an elliptical hole filled by a flat 'occluder' colour."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.25 * np.sin(3 * a * xx + 3 * b * yy + 6 * p)
    for _ in range(3):  # a few soft blobs so the content is not only low frequency
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - blob) + blob * rng.uniform(0, 1, 3)
    original = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)

    cy, cx = rng.uniform(0.25, 0.75, 2)
    ry, rx = rng.uniform(0.1, 0.25, 2)
    mask = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0)[..., None].astype(np.uint8)
    fill = rng.integers(0, 256, 3).astype(np.uint8)
    occluded = np.where(mask > 0, fill, original).astype(np.uint8)
    return {"occluded": occluded, "original": original, "mask": mask}


def validate(config) -> None:
    """Raises ValueError for a data config that cannot work, before any output is written."""
    for field in ("total_steps", "global_batch_size"):  # 0 or less would leave an empty workdir
        if config[field] < 1:
            raise ValueError(f"config.{field} must be >= 1, got {config[field]}")
    source = config.data.source
    if source not in SOURCES:
        raise ValueError(f"config.data.source must be one of {SOURCES}, got {source!r}")
    mask_source = config.data.get("mask_source", "gt")
    if mask_source not in MASK_SOURCES:
        raise ValueError(
            f"config.data.mask_source must be one of {MASK_SOURCES}, got {mask_source!r}"
        )
    if mask_source != "gt" and source != "tfds":
        raise ValueError(
            f"config.data.mask_source={mask_source!r} needs config.data.source='tfds' (detector "
            "masks are cached for the built dataset's example ids)"
        )
    if config.data.get("mask_dilation", 0) < 0:
        raise ValueError(f"config.data.mask_dilation must be >= 0, got {config.data.mask_dilation}")
    if not 0.0 <= config.data.get("augment_geometry", 0.0) <= 0.25:
        raise ValueError(
            "config.data.augment_geometry must be in [0, 0.25] (a fraction of the face crop), "
            f"got {config.data.augment_geometry}"
        )
    if source == "tfds" and not config.data.tfds_data_dir:
        raise ValueError(
            "config.data.source='tfds' needs config.data.tfds_data_dir: the --out folder of the "
            "dataset build (see docs/data.md)"
        )


def _generated_example_fn(config) -> Callable[[int], Example]:
    """Index → example from data_pipeline's in-memory compositing (training faces only)."""
    from jaxinpaint import generated_source

    return generated_source.example_fn(config, "train")


def training_faces(config) -> dict[str, str] | None:
    """face id -> person of every face this config trains on; None for synthetic data."""
    source = config.data.source
    if source == "generated":
        from jaxinpaint import generated_source

        return {f.id: f.person_id for f in generated_source.split_faces(config, "train")}
    if source == "tfds":
        from data_pipeline import splits

        return splits.read_index_faces(config.data.tfds_data_dir, config.data.split)
    return None


class InputPipeline:
    """Local batches for consecutive global steps, starting at `start_step`, prefetched."""

    def __init__(
        self,
        config,
        *,
        start_step: int,
        process_index: int = 0,
        process_count: int = 1,
        prefetch: int = 2,
    ):
        validate(config)
        source = config.data.source
        global_batch = config.global_batch_size
        if global_batch % process_count:
            raise ValueError(
                f"config.global_batch_size={global_batch} must divide by the process count "
                f"{process_count}"
            )
        self.local_batch = global_batch // process_count
        self._global_batch = global_batch
        self._offset = process_index * self.local_batch
        self._config = config
        if source == "tfds":
            from jaxinpaint import tfds_source

            batches = tfds_source.batches(config, start_step, self.local_batch, process_index)
        else:
            if source == "synthetic":
                size, seed = config.image_size, config.data.seed
                example = lambda i: synthetic_example(seed, i, size)
            else:
                example = _generated_example_fn(config)
            batches = self._indexed(example, start_step)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._thread = threading.Thread(target=self._fill, args=(batches,), daemon=True)
        self._thread.start()

    def _indexed(self, example: Callable[[int], Example], step: int) -> Iterator[Example]:
        while True:
            first = step * self._global_batch + self._offset
            items = [example(first + j) for j in range(self.local_batch)]
            yield {k: np.stack([it[k] for it in items]) for k in ("occluded", "original", "mask")}
            step += 1

    def _fill(self, batches: Iterator[Example]) -> None:
        try:
            for batch in batches:
                self._queue.put(batch)
        except BaseException as e:  # handed to the consumer, which re-raises it in its thread
            self._queue.put(e)

    def __iter__(self) -> InputPipeline:
        return self

    def __next__(self) -> Example:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


def fixed_examples(config, count: int, seed_offset: int = 10_000_000) -> Example:
    """`count` examples of the validation faces (synthetic: indices disjoint from training), fixed
    for a config: the sample grids and the validation scores while training."""
    if config.data.source == "synthetic":
        items = [
            synthetic_example(config.data.seed, seed_offset + i, config.image_size)
            for i in range(count)
        ]
    elif config.data.source == "generated":
        from jaxinpaint import generated_source

        example = generated_source.example_fn(config, "validation")  # never a training face
        items = [example(seed_offset + i) for i in range(count)]
    else:
        from jaxinpaint import tfds_source

        return tfds_source.first_examples(config, count)
    return {k: np.stack([it[k] for it in items]) for k in ("occluded", "original", "mask")}
