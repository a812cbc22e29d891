"""Prediction API and the TFRecord mask cache: what is written reads back, joined by id."""

import dataclasses
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from test_detector_model import tiny_model_config

from detector import mask_cache, predict, sources, synthetic
from detector import model as model_lib

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    model = model_lib.build_model(tiny_model_config(), image_size=64)
    # Threshold 0 keeps an untrained model's instances, so masks are non-empty.
    return predict.Detector(model, score_thresh=0.0, batch_size=3)


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(5)
    return [
        (f"ex-{i}", synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 2)[0])
        for i in range(5)
    ]


def test_predict_instances_and_union_mask(detector, examples):
    images = [im for _, im in examples[:2]]
    per_image = detector.predict(images)
    assert len(per_image) == 2
    instances = per_image[0]
    assert instances, "threshold 0 keeps the untrained model's detections"
    inst = instances[0]
    assert inst.mask.shape == (64, 64) and inst.mask.dtype == bool
    assert 1 <= inst.label <= 19 and isinstance(inst.category, str)
    union = detector.union_mask(instances)
    assert union.dtype == np.uint8 and set(np.unique(union)) <= {0, 1}
    np.testing.assert_array_equal(union, np.any([i.mask for i in instances], axis=0))
    np.testing.assert_array_equal(detector(images[0]), union)  # the image -> mask callable
    mask, found = detector.detect(images[0])  # reconstruction's mask source: both
    np.testing.assert_array_equal(mask, union)
    alone = detector.predict(images[:1])[0]  # one image: its own padding, as detect sees it
    assert [(i.label, i.score) for i in found] == [(i.label, i.score) for i in alone]


def test_union_mask_counts_only_chosen_classes_and_threshold(detector):
    a = predict.Instance(4, 0.9, (0, 0, 4, 4), np.eye(8, dtype=bool))  # cap
    b = predict.Instance(14, 0.95, (4, 4, 8, 8), np.fliplr(np.eye(8, dtype=bool)))  # mask
    caps = predict.Detector(detector.model, score_thresh=0.5, classes=("cap",))
    np.testing.assert_array_equal(caps.union_mask([a, b]), np.eye(8, dtype=np.uint8))
    assert caps.union_mask([b], 8, 8).sum() == 0
    np.testing.assert_array_equal(predict.box_mask([a], 8, 8)[:4, :4], np.ones((4, 4)))
    assert predict.box_mask([a], 8, 8).sum() == 16
    with pytest.raises(ValueError, match="unknown occluder category"):
        predict.Detector(detector.model, classes=("hat",))
    high = predict.Detector(detector.model, score_thresh=0.99)
    assert high.predict([np.zeros((64, 64, 3), np.uint8)]) == [[]]
    model_lib.set_score_thresh(detector.model, 0.0)  # the shared model back as the fixture had it
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        detector.predict([np.zeros((64, 64), np.uint8)])


def test_detector_thresholds_the_occluder_score_unless_told_by_class(detector, examples):
    image = examples[0][1]
    by_class = predict.Detector(detector.model, score_thresh=0.5, score="class")
    assert by_class.score == "class"
    assert by_class.predict([image]) == [[]]  # untrained: each class near 1/20
    by_occluder = predict.Detector(detector.model, score_thresh=0.5)
    assert by_occluder.score == "occluder"
    assert by_occluder.predict([image])[0]  # but sure enough that something is there
    model_lib.set_score_thresh(detector.model, 0.0)  # the shared model back as the fixture had it
    with pytest.raises(ValueError, match="detector score is 'best'"):
        predict.Detector(detector.model, score="best")
    assert detector.score == "occluder"


def test_cache_reads_back_and_joins_by_id(detector, examples, tmp_path):
    expected = dict(
        zip([i for i, _ in examples], detector.masks([im for _, im in examples]), strict=True)
    )
    # Same batches as `expected` (3 + 2 images): batching changes the floats in the last bits.
    meta = mask_cache.cache_masks(detector, iter(examples), tmp_path, num_shards=2, batch_size=3)
    assert meta["num_examples"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mask_cache.json",
        "masks.tfrecord-00000-of-00002",
        "masks.tfrecord-00001-of-00002",
    ]
    cache = mask_cache.read_mask_cache(tmp_path)
    assert set(cache) == set(expected)
    for example_id, (mask, boxes_mask, chosen) in expected.items():
        got = cache[example_id]
        np.testing.assert_array_equal(got["mask"], mask)
        np.testing.assert_array_equal(got["box_mask"], boxes_mask)
        assert got["labels"].tolist() == [c.label for c in chosen]
        np.testing.assert_allclose(got["boxes"], [c.box for c in chosen], rtol=1e-6)
    # The join the inpainting pipeline does: its examples (other order) + the cache by id.
    for example_id, _ in reversed(examples):
        assert cache[example_id]["mask"].shape == (64, 64)


def test_cache_leaves_out_detections_off_the_face(detector, tmp_path):
    on, off = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
    on[36:52, 20:44] = True  # over the template's mouth
    off[54:, :12] = True  # the crop's bottom-left corner: a collar, not the face
    found = [
        predict.Instance(14, 0.9, (20, 36, 44, 52), on),
        predict.Instance(17, 0.8, (0, 54, 12, 64), off),
    ]

    class Fixed(predict.Detector):
        def predict(self, images):  # `found`, cut to each image's size
            return [
                [dataclasses.replace(i, mask=i.mask[: im.shape[0], : im.shape[1]]) for i in found]
                for im in images
            ]

    fixed = Fixed(detector.model, score_thresh=0.0)
    model_lib.set_score_thresh(detector.model, 0.0)  # the shared model back as the fixture had it
    image = np.zeros((64, 64, 3), np.uint8)
    [(every, _, all_found)] = fixed.masks([image])
    assert len(all_found) == 2 and every.sum() == on.sum() + off.sum()
    meta = mask_cache.cache_masks(fixed, [("a", image)], tmp_path, num_shards=1, on_face=0.3)
    assert meta["on_face"] == 0.3
    got = mask_cache.read_mask_cache(tmp_path)["a"]
    np.testing.assert_array_equal(got["mask"], on)
    np.testing.assert_array_equal(got["box_mask"], predict.box_mask(found[:1], 64, 64))
    assert got["labels"].tolist() == [14]
    with pytest.raises(ValueError, match="square crop aligned"):
        fixed.masks([np.zeros((64, 48, 3), np.uint8)], on_face=0.3)


def test_cache_rejects_duplicate_ids_and_leaves_no_partial_shards(detector, examples, tmp_path):
    twice = [examples[0], examples[1], examples[0]]
    with pytest.raises(ValueError, match="occurs twice"):
        mask_cache.cache_masks(detector, twice, tmp_path, num_shards=1, batch_size=1)
    assert list(tmp_path.iterdir()) == []


def write_records(cache_dir, ids, num_shards=1, meta=None):
    """A cache of all-zero 4x4 masks for `ids`, written as cache_masks writes one."""
    zeros = np.zeros((4, 4), np.uint8)
    with mask_cache.writing_cache(cache_dir, num_shards, dict(meta or {})) as write:
        for example_id in ids:
            write(mask_cache.encode_example(example_id, zeros, zeros))


def test_new_cache_replaces_the_old_one_whole(tmp_path):
    cache = tmp_path / "cache"
    write_records(cache, ["a", "b", "c"], num_shards=3)
    write_records(cache, ["d"], num_shards=1)  # another --num_shards: no old shard survives
    assert sorted(p.name for p in cache.iterdir()) == [
        "mask_cache.json",
        "masks.tfrecord-00000-of-00001",
    ]
    assert list(mask_cache.read_mask_cache(cache)) == ["d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no temporary folder left


def test_interrupted_cache_leaves_the_old_one(tmp_path):
    cache = tmp_path / "cache"
    write_records(cache, ["a"])
    with pytest.raises(KeyboardInterrupt), mask_cache.writing_cache(cache, 2, {}) as write:
        write(mask_cache.encode_example("b", np.zeros((4, 4)), np.zeros((4, 4))))
        raise KeyboardInterrupt
    assert list(mask_cache.read_mask_cache(cache)) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_reader_opens_only_the_listed_shards(tmp_path):
    write_records(tmp_path, ["a", "b"])
    # Strays a glob would pick up: an older run's shard and a torn temporary file.
    (tmp_path / "masks.tfrecord-00000-of-00002").write_bytes(b"not a record")
    (tmp_path / "masks.tfrecord-00000-of-00001.tmp").write_bytes(b"torn")
    assert sorted(mask_cache.read_mask_cache(tmp_path)) == ["a", "b"]
    (tmp_path / "masks.tfrecord-00000-of-00001").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks masks\.tfrecord-00000-of-00001"):
        mask_cache.read_mask_cache(tmp_path)
    (tmp_path / "mask_cache.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no detector mask cache .*mask_cache\.json"):
        mask_cache.read_mask_cache(tmp_path)


def test_cache_refuses_to_replace_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not only a mask cache"):
        write_records(tmp_path, ["a"])
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_stale_reason_checks_completeness_checkpoint_and_dataset(tmp_path):
    checkpoint, cache = tmp_path / "model_final.pt", tmp_path / "data" / "mask_cache"
    checkpoint.write_bytes(b"weights v1")
    made_from = mask_cache.provenance(checkpoint, tmp_path / "data")
    assert "no detector mask cache" in mask_cache.stale_reason(cache, made_from)
    write_records(cache, ["a"], meta=made_from)
    assert mask_cache.stale_reason(cache, made_from) is None
    checkpoint.write_bytes(b"weights v2")  # the detector trained on: same path, other bytes
    retrained = mask_cache.provenance(checkpoint, tmp_path / "data")
    assert "detector_sha256" in mask_cache.stale_reason(cache, retrained)
    assert "dataset" in mask_cache.stale_reason(cache, {**made_from, "dataset": "/elsewhere"})
    # A cache written before the on-face rule (or with another fraction) is stale to a caller
    # that asks for one; one that does not ask keeps it.
    assert "on_face" in mask_cache.stale_reason(cache, {**made_from, "on_face": 0.3})
    write_records(cache, ["a"], meta={**made_from, "on_face": 0.3})
    assert mask_cache.stale_reason(cache, {**made_from, "on_face": 0.3}) is None
    assert mask_cache.stale_reason(cache, made_from) is None
    (cache / "masks.tfrecord-00000-of-00001").unlink()  # incomplete
    assert "lacks" in mask_cache.stale_reason(cache, made_from)


def test_encode_decode_round_trip_without_instances():
    mask = np.zeros((6, 7), np.uint8)
    mask[1:3, 2:5] = 1
    record = mask_cache.encode_example("a/b", mask, mask)
    example_id, out = mask_cache.decode_example(record)
    assert example_id == "a/b"
    np.testing.assert_array_equal(out["mask"], mask)
    assert out["boxes"].shape == (0, 4)


def test_folder_source_uses_file_stems(tmp_path):
    for name in ("b.png", "a.png", "e.webp", "f.bmp"):  # every format the photo reader takes
        Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / name)
    (tmp_path / "c.png").write_bytes(b"")  # corrupt files are skipped with their reason
    (tmp_path / "d.jpg").write_bytes(b"<html>not a photo</html>")
    examples = sources.open_examples(tmp_path)
    items = list(examples.pairs)
    assert examples.total == 6 and [i for i, _ in items] == ["a", "b", "e", "f"]
    assert items[0][1].shape == (8, 8, 3)
    assert [(pathlib.Path(p).name, r) for p, r in examples.skipped] == [
        ("c.png", "zero-byte file"),
        ("d.jpg", "not an image"),
    ]
    with pytest.raises(FileNotFoundError):
        sources.open_examples(tmp_path / "missing")
