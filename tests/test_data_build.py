"""End-to-end build on a tiny folder: reproducible, COCO and TFDS outputs read back, bad inputs
counted, no half-written output."""

import collections
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from data_helpers import detectable_sample_faces, make_bad_files
from PIL import Image
from pycocotools.coco import COCO

from data_pipeline import build, tfds_builder
from data_pipeline.categories import CATEGORIES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    expected = make_bad_files(d)
    for i, path in enumerate(detectable_sample_faces(4)):
        Image.open(path).save(d / f"{20 + i}_{i % 2}_1_2017.jpg", quality=95)
    return d, expected


@pytest.fixture(scope="module")
def built(face_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("builds")
    kwargs = dict(size=64, per_face=2, seed=7, progress=False)
    a = build.build_dataset(str(face_dir[0]), str(out / "a"), **kwargs)
    b = build.build_dataset(str(face_dir[0]), str(out / "b"), **kwargs)
    return out / "a", out / "b", a, b


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_same_seed_gives_the_same_dataset(built):
    a, b, sa, sb = built
    index_a = (a / "pairs" / "index.jsonl").read_text()
    assert index_a == (b / "pairs" / "index.jsonl").read_text()
    assert len(index_a.splitlines()) == 8  # 4 faces x 2
    for kind in ("original", "occluded", "mask"):
        names = sorted(os.listdir(a / "pairs" / kind))
        assert names == sorted(os.listdir(b / "pairs" / kind))
        for n in names:
            np.testing.assert_array_equal(
                _read(a / "pairs" / kind / n), _read(b / "pairs" / kind / n)
            )
    for split in ("train", "test"):
        ann = f"coco/annotations/instances_{split}.json"
        assert json.loads((a / ann).read_text()) == json.loads((b / ann).read_text())
    assert sa["examples_per_category"] == sb["examples_per_category"]


def test_summary_counts_each_bad_input_with_its_reason(built, face_dir):
    _, _, summary, _ = built
    expected = collections.Counter(face_dir[1].values())
    assert summary["skipped"] == dict(expected)
    assert summary["faces_used"] == 4 and summary["inputs"] == 4 + len(face_dir[1])
    assert summary["examples"] == 8
    assert 0.5 < summary["difference_mask_iou_mean"] <= 1.0
    text = build.summarize(summary)
    for reason in expected:
        assert reason in text


# pycocotools 2.0.11 passes copy=False to numpy 2 when decoding; harmless, and not ours to fix
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_json_loads_and_its_areas_equal_the_exact_masks(built):
    a = built[0]
    seen = 0
    for split in ("train", "test"):
        coco = COCO(str(a / "coco" / "annotations" / f"instances_{split}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CATEGORIES)
        for ann in coco.loadAnns(coco.getAnnIds()):
            img = coco.loadImgs(ann["image_id"])[0]
            assert os.path.isfile(a / "coco" / split / img["file_name"])
            exact = _read(a / "pairs" / "mask" / f"{img['example_id']}.png") > 127
            got = coco.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(got, exact)
            assert ann["area"] == exact.sum()
            seen += 1
    assert seen == 8


def test_tfds_dataset_reads_back_equal_to_what_was_written(built):
    a = built[0]
    rows = {r["id"]: r for r in tfds_builder.read_index(str(a / "pairs"))}
    seen = 0
    for split in tfds_builder.SPLITS:
        for ex in tfds_builder.load_numpy(str(a), split):
            ex_id = ex["id"].decode()
            row = rows[ex_id]
            assert row["split"] == split
            for kind in ("original", "occluded"):
                want = cv2.cvtColor(_read(a / "pairs" / kind / f"{ex_id}.png"), cv2.COLOR_BGR2RGB)
                np.testing.assert_array_equal(ex[kind], want)
            mask = (_read(a / "pairs" / "mask" / f"{ex_id}.png") > 127).astype(np.uint8)
            np.testing.assert_array_equal(ex["mask"][..., 0], mask)
            assert ex["category"] == row["category"]
            np.testing.assert_array_equal(ex["bbox"], np.float32(row["bbox"]))
            assert (ex["gender"], ex["age"]) == (row["gender"], row["age"]) and row["age"] >= 20
            seen += 1
    assert seen == len(rows) == 8


def test_failed_build_leaves_nothing_behind(face_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tfds_builder, "write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build.build_dataset(str(face_dir[0]), str(tmp_path / "out"), size=48, progress=False)
    assert os.listdir(tmp_path) == []


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        raise OSError(28, "No space left on device")


def test_an_image_that_cannot_be_written_fails_the_build(face_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(build, "open", _FullDisk, raising=False)  # build's writes only
    with pytest.raises(OSError, match=r"faces/.*\.png \(disk full"):  # the first image written
        build.build_dataset(str(face_dir[0]), str(tmp_path / "out"), size=48, progress=False)
    assert os.listdir(tmp_path) == []


def test_user_errors_are_one_line_without_traceback(face_dir, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(build.BuildError, match="not empty"):
        build.build_dataset(str(face_dir[0]), str(tmp_path / "full"), progress=False)
    empty = tmp_path / "nofaces"
    empty.mkdir()
    Image.fromarray(np.full((80, 80, 3), (10, 120, 200), np.uint8)).save(empty / "sky.png")
    with pytest.raises(build.BuildError, match="no usable face"):
        build.build_dataset(str(empty), str(tmp_path / "o"), size=48, progress=False)
    assert not os.path.exists(tmp_path / "o")
    (empty / "list_attr_celeba.txt").write_text("2\nSmiling Young\n")  # no Male column
    with pytest.raises(build.BuildError, match=r"list_attr_celeba\.txt: no 'Male' column"):
        build.build_dataset(str(empty), str(tmp_path / "o"), size=48, progress=False)
    cmd = [
        sys.executable,
        os.path.join(ROOT, "launch", "build_dataset.py"),
        f"--faces={tmp_path / 'missing'}",
        f"--out={tmp_path / 'o'}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "error: --faces=" in proc.stderr and "Traceback" not in proc.stderr
