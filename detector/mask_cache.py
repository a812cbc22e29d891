"""The mask cache: detector masks for every inpainting example, as TFRecords keyed by example id.

Each record is a `tf.train.Example` with
    id        bytes    the example id (UTF-8), the key the JAX input pipeline joins on
    height    int64    image height H
    width     int64    image width W
    mask      bytes    PNG, 8-bit grayscale HxW, 1 = occluder: union of the chosen classes'
                       predicted masks with score >= the threshold (all 0 when none found)
    box_mask  bytes    PNG, 8-bit grayscale HxW, 1 inside any of those instances' boxes
    labels    int64[]  class ids of those instances (data_pipeline/categories.py)
    scores    float[]  their scores
    boxes     float[]  their boxes, x0 y0 x1 y1 per instance, in pixels
Shards are `masks.tfrecord-SSSSS-of-NNNNN` beside `mask_cache.json` (counts, detector, threshold).
TensorFlow is imported only here and only when a cache is written or read.
"""

import io
import itertools
import json
import os
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

SHARD_PREFIX = "masks.tfrecord"
META_NAME = "mask_cache.json"


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


def shard_paths(cache_dir, num_shards: int) -> list[pathlib.Path]:
    """The shard file names of a cache with `num_shards` shards."""
    cache_dir = pathlib.Path(cache_dir)
    return [cache_dir / f"{SHARD_PREFIX}-{s:05d}-of-{num_shards:05d}" for s in range(num_shards)]


def cache_masks(
    detector,
    examples: Iterable[tuple[str, np.ndarray]],
    cache_dir,
    *,
    num_shards: int = 4,
    batch_size: int = 8,
    total: int | None = None,
    detector_name: str = "",
) -> dict:
    """Run `detector` (a predict.Detector) over (id, HxWx3 uint8 image) pairs; write the cache.

    Examples go round-robin into `num_shards` shards, written under temporary names and renamed
    only when all are complete. Returns the metadata written to mask_cache.json.
    """
    import tensorflow as tf

    if num_shards < 1:
        raise ValueError(f"num_shards is {num_shards}; expected at least 1")
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    finals = shard_paths(cache_dir, num_shards)
    tmps = [p.with_name(p.name + ".tmp") for p in finals]
    writers = [tf.io.TFRecordWriter(str(p)) for p in tmps]
    count, with_mask, seen = 0, 0, set()
    iterator = iter(examples)
    try:
        with tqdm(total=total, desc="mask cache", unit="img") as bar:
            while batch := list(itertools.islice(iterator, batch_size)):
                ids = [str(i) for i, _ in batch]
                for example_id in ids:
                    if example_id in seen:
                        raise ValueError(
                            f"example id {example_id!r} occurs twice; expected unique ids"
                        )
                    seen.add(example_id)
                results = detector.masks([np.asarray(im) for _, im in batch])
                for example_id, (mask, boxes_mask, chosen) in zip(ids, results, strict=True):
                    record = encode_example(
                        example_id,
                        mask,
                        boxes_mask,
                        [x.label for x in chosen],
                        [x.score for x in chosen],
                        [x.box for x in chosen],
                    )
                    writers[count % num_shards].write(record)
                    count += 1
                    with_mask += bool(mask.any())
                bar.update(len(batch))
    except BaseException:
        for w, tmp in zip(writers, tmps, strict=True):
            w.close()
            tmp.unlink(missing_ok=True)
        raise
    for w in writers:
        w.close()
    for tmp, final in zip(tmps, finals, strict=True):
        os.replace(tmp, final)
    meta = {
        "num_examples": count,
        "num_with_mask": with_mask,
        "num_shards": num_shards,
        "shards": [p.name for p in finals],
        "detector": str(detector_name),
        "score_thresh": detector.score_thresh,
        "class_ids": sorted(detector.class_ids),
        "mask_encoding": "PNG 8-bit grayscale, 1 = occluder",
    }
    meta_tmp = cache_dir / (META_NAME + ".tmp")
    meta_tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(meta_tmp, cache_dir / META_NAME)
    return meta


def iter_cache(cache_dir) -> Iterator[tuple[str, dict]]:
    """Yield (id, masks dict) for every record of the cache in `cache_dir`."""
    import tensorflow as tf

    cache_dir = pathlib.Path(cache_dir)
    shards = sorted(cache_dir.glob(f"{SHARD_PREFIX}-*-of-*"))
    shards = [p for p in shards if not p.name.endswith(".tmp")]
    if not shards:
        raise FileNotFoundError(
            f"{cache_dir} has no {SHARD_PREFIX}-* shards; expected a mask cache"
        )
    for record in tf.data.TFRecordDataset([str(p) for p in shards]).as_numpy_iterator():
        yield decode_example(record)


def read_mask_cache(cache_dir) -> dict[str, dict]:
    """The whole cache as {example id: {"mask", "box_mask", "labels", "scores", "boxes"}}."""
    return dict(iter_cache(cache_dir))
