"""The tfds source: where a resumed run starts (without decoding what it skips), and the hole it
trains on (the exact mask, the detector's cached masks, or their union)."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import detectable_sample_faces
from inpaint_tiny import tiny_config
from PIL import Image

from data_pipeline import build, tfds_builder
from detector.mask_cache import encode_example, writing_cache
from jaxinpaint import input_pipeline, tfds_source

SIZE = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    faces = tmp_path_factory.mktemp("faces")
    for i, path in enumerate(detectable_sample_faces(4)):
        Image.open(path).save(faces / f"face{i}.jpg", quality=95)
    out = tmp_path_factory.mktemp("build") / "data"
    build.build_dataset(str(faces), str(out), size=SIZE, per_face=2, seed=0, progress=False)
    # A "detector" cache: mask = a 4x4 square at the top-left, box mask = the top 8 rows.
    det = np.zeros((SIZE, SIZE), np.uint8)
    det[:4, :4] = 1
    box = np.zeros((SIZE, SIZE), np.uint8)
    box[:8] = 1
    ids = [ex["id"].decode() for s in ("train", "validation", "test")
           for ex in tfds_builder.load_numpy(str(out), s)]  # fmt: skip
    with writing_cache(out / "mask_cache", 1, {}) as write:
        for example_id in ids:
            write(encode_example(example_id, det, box))
    return out, det, box


def first_masks(config):
    ds = tfds_source._dataset(config, config.data.split)
    return [(ex["mask"][..., 0], ex) for ex in ds.take(3).as_numpy_iterator()]


def config_for(dataset, **data):
    c = tiny_config()
    c.data.source = "tfds"
    c.data.tfds_data_dir = str(dataset[0])
    c.data.update(data)
    return c


def test_gt_is_the_exact_mask(dataset):
    for mask, _ in first_masks(config_for(dataset)):
        assert mask.any() and not np.array_equal(mask, dataset[1])


@pytest.mark.parametrize("source", ["detector", "detector_box", "union"])
def test_detector_masks_are_joined_by_id(dataset, source):
    _, det, box = dataset
    gt = [m for m, _ in first_masks(config_for(dataset))]
    got = [m for m, _ in first_masks(config_for(dataset, mask_source=source))]
    for g, m in zip(gt, got, strict=True):
        want = {"detector": det, "detector_box": box, "union": np.maximum(g, det)}[source]
        np.testing.assert_array_equal(m, want)


def test_dilation_grows_the_hole(dataset):
    (mask, _), *_ = first_masks(config_for(dataset, mask_source="detector", mask_dilation=2))
    assert mask[:6, :6].all() and mask.sum() == 36


def test_bad_mask_settings_fail_clearly(dataset, tmp_path):
    with pytest.raises(ValueError, match="mask_source must be one of"):
        input_pipeline.validate(config_for(dataset, mask_source="sam"))
    c = tiny_config()
    c.data.mask_source = "detector"
    with pytest.raises(ValueError, match=r"needs config\.data\.source='tfds'"):
        input_pipeline.validate(c)
    with pytest.raises(FileNotFoundError, match="no detector mask cache"):
        first_masks(config_for(dataset, mask_source="detector", mask_cache_dir=str(tmp_path)))


def test_only_the_shards_the_cache_lists_are_read(dataset, tmp_path):
    cache = tmp_path / "mask_cache"
    shutil.copytree(dataset[0] / "mask_cache", cache)
    (cache / "masks.tfrecord-00001-of-00002").write_bytes(b"an older run's shard")
    (cache / "masks.tfrecord-00000-of-00001.tmp").write_bytes(b"torn")
    (mask, _), *_ = first_masks(
        config_for(dataset, mask_source="detector", mask_cache_dir=str(cache))
    )
    np.testing.assert_array_equal(mask, dataset[1])
    (cache / "mask_cache.json").unlink()  # an interrupted cache has shards but no metadata
    with pytest.raises(FileNotFoundError, match=r"no mask_cache\.json"):
        first_masks(config_for(dataset, mask_source="detector", mask_cache_dir=str(cache)))


def tfds_batches(dataset, start_step, count, local_batch=3):
    config = config_for(dataset, shuffle_buffer=3)
    stream = tfds_source.batches(config, start_step, local_batch, process_index=0)
    return [next(stream) for _ in range(count)]


def test_resume_gives_the_batches_of_an_uninterrupted_run(dataset):
    # 3-example batches over a 4-example split: batches cross epochs, and each epoch's order
    # differs (a resume that restarted the shuffle, or kept one epoch's order, would show).
    fresh = tfds_batches(dataset, 0, 7)
    assert len({b["occluded"].tobytes() for b in fresh}) > 1
    for start in (1, 3, 5):
        for want, got in zip(fresh[start:], tfds_batches(dataset, start, 7 - start), strict=True):
            for key in ("occluded", "original", "mask"):
                np.testing.assert_array_equal(got[key], want[key])


def test_resume_decodes_none_of_the_skipped_examples(dataset, monkeypatch):
    decoded = []
    real = tfds_source._decode_images

    def counting(features, ex):
        out = real(features, ex)
        out["id"] = tf.py_function(lambda i: decoded.append(i) or i, [ex["id"]], tf.string)
        return out

    monkeypatch.setattr(tfds_source, "_decode_images", counting)
    tfds_batches(dataset, start_step=200, count=1)  # 600 examples in: 150 epochs of 4
    # The batch and what prefetching reads ahead; the 600 skipped examples are never decoded.
    assert 3 <= len(decoded) < 100
