"""Which files make up a mask cache: the contract between its writer (`detector.mask_cache`) and
its readers (that module and `jaxinpaint.tfds_source`), which never import each other.

A cache folder holds `mask_cache.json` and the TFRecord shards it lists under "shards". The
writer builds the whole folder under a temporary name and renames it into place, so a folder with
the metadata is complete; readers open exactly the listed shards, never a glob, so stray files
(an older run's shards, another tool's temporaries) are never read. A cache may live in a bucket
(gs://...) as the TFDS set may: such paths go through `tf.io.gfile`, local ones need no TensorFlow.
"""

from __future__ import annotations

import builtins
import json
import os
import posixpath

SHARD_PREFIX = "masks.tfrecord"
META_NAME = "mask_cache.json"


def shard_names(num_shards: int) -> list[str]:
    """The shard file names of a cache with `num_shards` shards."""
    return [f"{SHARD_PREFIX}-{s:05d}-of-{num_shards:05d}" for s in range(num_shards)]


def _file_api(path: str):
    """(exists, open) for `path`: TensorFlow's for URLs such as gs://..., the builtins otherwise."""
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.exists, tf.io.gfile.GFile
    return os.path.exists, builtins.open


def read_meta(cache_dir: str) -> dict:
    """The cache's metadata; FileNotFoundError naming the folder if it has none."""
    path = posixpath.join(str(cache_dir), META_NAME)
    exists, open_file = _file_api(path)
    if not exists(path):
        raise FileNotFoundError(
            f"no detector mask cache in {cache_dir} (no {META_NAME}: expected the output of "
            "launch/cache_masks.py; an interrupted run leaves none, so run it again)"
        )
    with open_file(path, "r") as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{path} is not valid JSON ({e}); run launch/cache_masks.py again"
            ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("shards"), list):
        raise ValueError(f"{path} lists no shards; expected the metadata of launch/cache_masks.py")
    return meta


def listed_shards(cache_dir: str) -> list[str]:
    """The paths of the shards the metadata lists, each checked to exist."""
    paths = [posixpath.join(str(cache_dir), name) for name in read_meta(cache_dir)["shards"]]
    exists, _ = _file_api(str(cache_dir))
    missing = [posixpath.basename(p) for p in paths if not exists(p)]
    if missing:
        raise FileNotFoundError(
            f"the mask cache in {cache_dir} lacks {', '.join(missing)}, which its {META_NAME} "
            "lists; run launch/cache_masks.py again"
        )
    return paths
