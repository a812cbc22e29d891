"""The mask cache: detector masks for every inpainting example, as TFRecords keyed by example id.

Each record is a `tf.train.Example` with
    id        bytes    the example id (UTF-8), the key the JAX input pipeline joins on
    height    int64    image height H
    width     int64    image width W
    mask      bytes    PNG, 8-bit grayscale HxW, 1 = occluder: union of the chosen classes'
                       predicted masks with score >= the threshold and at least the
                       `on_face` fraction on the face (all 0 when none found)
    box_mask  bytes    PNG, 8-bit grayscale HxW, 1 inside any of those instances' boxes
    labels    int64[]  class ids of those instances (data_pipeline/categories.py)
    scores    float[]  their scores
    boxes     float[]  their boxes, x0 y0 x1 y1 per instance, in pixels
Shards are `masks.tfrecord-SSSSS-of-NNNNN` beside `mask_cache.json` (the shard list, counts,
detector checkpoint and its SHA-256, dataset, threshold, on-face fraction); readers open only the
listed shards (`data_pipeline/mask_cache_files.py`). The folder is written whole under a temporary
name and renamed into place. TensorFlow is imported only when a cache is written or read.
"""

import contextlib
import hashlib
import io
import itertools
import json
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_pipeline import atomic, mask_cache_files


def _png(mask_HxW: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask_HxW, np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _unpng(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img, np.uint8)


def encode_example(example_id: str, mask_HxW, box_mask_HxW, labels=(), scores=(), boxes=()):
    """One cache record as serialised `tf.train.Example` bytes."""
    import tensorflow as tf

    mask_HxW, box_mask_HxW = np.asarray(mask_HxW), np.asarray(box_mask_HxW)
    if mask_HxW.shape != box_mask_HxW.shape or mask_HxW.ndim != 2:
        raise ValueError(
            f"example {example_id!r}: mask {mask_HxW.shape} and box mask {box_mask_HxW.shape}; "
            "expected two HxW arrays of one shape"
        )

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))

    def f(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(v)))

    h, w = mask_HxW.shape
    feature = {
        "id": b(str(example_id).encode("utf-8")),
        "height": i([h]),
        "width": i([w]),
        "mask": b(_png(mask_HxW)),
        "box_mask": b(_png(box_mask_HxW)),
        "labels": i(int(x) for x in labels),
        "scores": f(float(x) for x in scores),
        "boxes": f(float(x) for x in np.asarray(boxes, np.float64).reshape(-1)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def decode_example(serialized: bytes) -> tuple[str, dict]:
    """(id, {"mask", "box_mask": HxW uint8, "labels", "scores", "boxes": Nx4}) of one record."""
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized).features.feature
    example_id = ex["id"].bytes_list.value[0].decode("utf-8")
    h, w = ex["height"].int64_list.value[0], ex["width"].int64_list.value[0]
    out = {
        "mask": _unpng(ex["mask"].bytes_list.value[0]),
        "box_mask": _unpng(ex["box_mask"].bytes_list.value[0]),
        "labels": np.array(ex["labels"].int64_list.value, np.int64),
        "scores": np.array(ex["scores"].float_list.value, np.float32),
        "boxes": np.array(ex["boxes"].float_list.value, np.float32).reshape(-1, 4),
    }
    if out["mask"].shape != (h, w):
        raise ValueError(
            f"mask cache record {example_id!r}: mask is {out['mask'].shape}, not {h}x{w}"
        )
    return example_id, out


def provenance(detector_checkpoint, dataset) -> dict:
    """What a cache is made from, for mask_cache.json: the checkpoint (path and SHA-256 of its
    bytes, so a retrained detector is told apart) and the dataset folder."""
    digest = hashlib.sha256()
    with open(detector_checkpoint, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return {
        "detector": str(detector_checkpoint),
        "detector_sha256": digest.hexdigest(),
        "dataset": os.path.abspath(dataset),
    }


def stale_reason(cache_dir, made_from: dict) -> str | None:
    """Why the cache in `cache_dir` cannot stand for `made_from` (a `provenance` dict, with the
    `on_face` fraction where the caller cares), or None when it is complete and made from the
    same checkpoint bytes and dataset folder (and with that `on_face`)."""
    try:
        meta = mask_cache_files.read_meta(str(cache_dir))
        mask_cache_files.listed_shards(str(cache_dir))  # every listed shard is there
    except (FileNotFoundError, ValueError) as err:
        return str(err)
    for key in ("detector_sha256", "dataset", "on_face"):
        if key in made_from and meta.get(key) != made_from[key]:
            return f"{cache_dir} was made with {key}={meta.get(key)!r}, not {made_from[key]!r}"
    return None


def _check_replaceable(cache_dir: pathlib.Path) -> None:
    """A new cache replaces `cache_dir` whole: refuse a path that holds anything but a cache."""
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"{cache_dir} is a file; expected a mask cache folder (new or old)")
    if cache_dir.is_dir():
        names = {mask_cache_files.META_NAME}
        others = [
            p.name
            for p in cache_dir.iterdir()
            if p.name not in names and not p.name.startswith(mask_cache_files.SHARD_PREFIX)
        ]
        if others:
            raise ValueError(
                f"{cache_dir} holds {sorted(others)[:3]}, not only a mask cache; a new cache "
                "replaces the whole folder, so choose an empty or new one"
            )


@contextlib.contextmanager
def writing_cache(cache_dir, num_shards: int, meta: dict) -> Iterator[Callable[[bytes], None]]:
    """`with writing_cache(dir, n, meta) as write: write(record)...` writes serialised records
    round-robin into `n` shards of a temporary folder beside `dir`, and `meta` (which the block
    may update) as its mask_cache.json, with the count and shard names added. The folder replaces
    `dir`, an old cache included, only when the block ends without error: a reader never sees a
    partial cache or a mix of two."""
    import tensorflow as tf

    if num_shards < 1:
        raise ValueError(f"num_shards is {num_shards}; expected at least 1")
    cache_dir = pathlib.Path(cache_dir)
    _check_replaceable(cache_dir)
    names = mask_cache_files.shard_names(num_shards)
    count = 0
    with atomic.folder(cache_dir) as tmp:
        with contextlib.ExitStack() as stack:
            writers = [stack.enter_context(tf.io.TFRecordWriter(f"{tmp}/{n}")) for n in names]

            def write(record: bytes) -> None:
                nonlocal count
                writers[count % num_shards].write(record)
                count += 1

            yield write
        meta.update(num_examples=count, num_shards=num_shards, shards=names)
        text = json.dumps(meta, indent=2) + "\n"
        pathlib.Path(tmp, mask_cache_files.META_NAME).write_text(text, encoding="utf-8")


def _detections(
    detector, examples: Iterable[tuple[str, np.ndarray]], batch_size: int, on_face: float
):
    """(id, (mask, box mask, chosen instances)) per example, the detector run on batches."""
    seen = set()
    iterator = iter(examples)
    while batch := list(itertools.islice(iterator, batch_size)):
        ids = [str(i) for i, _ in batch]
        for example_id in ids:
            if example_id in seen:
                raise ValueError(f"example id {example_id!r} occurs twice; expected unique ids")
            seen.add(example_id)
        images = [np.asarray(im) for _, im in batch]
        yield from zip(ids, detector.masks(images, on_face=on_face), strict=True)


def cache_masks(
    detector,
    examples: Iterable[tuple[str, np.ndarray]],
    cache_dir,
    *,
    num_shards: int = 4,
    batch_size: int = 8,
    total: int | None = None,
    made_from: dict | None = None,
    on_face: float = 0.0,
) -> dict:
    """Run `detector` (a predict.Detector) over (id, HxWx3 uint8 image) pairs; write the cache.

    With `on_face` > 0 the images are face crops aligned to the template (the dataset build's
    default) and detections with less than that fraction of their mask on the face are left out,
    as reconstruction leaves them (`data_pipeline.align.on_face`). The cache appears at
    `cache_dir` whole or not at all (see `writing_cache`); `made_from` (a `provenance` dict) is
    recorded in mask_cache.json. Returns the metadata written there.
    """
    meta = cache_meta(detector, made_from, on_face)
    with (
        writing_cache(cache_dir, num_shards, meta) as write,
        tqdm(total=total, desc="mask cache", unit="img") as bar,
    ):
        for example_id, detection in _detections(detector, examples, batch_size, on_face):
            write(record_of(example_id, detection))
            meta["num_with_mask"] += bool(detection[0].any())
            bar.update(1)
    return meta


def cache_meta(detector, made_from: dict | None, on_face: float) -> dict:
    """mask_cache.json before the counts: what the detector keeps, and what it was made from."""
    return {
        "num_with_mask": 0,
        **(made_from or {}),
        "score_thresh": detector.score_thresh,
        "score": detector.score,
        "on_face": on_face,
        "class_ids": sorted(detector.class_ids),
        "mask_encoding": "PNG 8-bit grayscale, 1 = occluder",
    }


def record_of(example_id: str, detection: tuple) -> bytes:
    """The cache record of one example from `predict.Detector.masks`' (mask, box mask, chosen)."""
    mask, boxes_mask, chosen = detection
    return encode_example(
        example_id,
        mask,
        boxes_mask,
        [x.label for x in chosen],
        [x.score for x in chosen],
        [x.box for x in chosen],
    )


def iter_cache(cache_dir) -> Iterator[tuple[str, dict]]:
    """Yield (id, masks dict) for every record of the shards the cache's metadata lists."""
    import tensorflow as tf

    shards = mask_cache_files.listed_shards(str(cache_dir))
    for record in tf.data.TFRecordDataset(shards).as_numpy_iterator():
        yield decode_example(record)


def read_mask_cache(cache_dir) -> dict[str, dict]:
    """The whole cache as {example id: {"mask", "box_mask", "labels", "scores", "boxes"}}."""
    return dict(iter_cache(cache_dir))
