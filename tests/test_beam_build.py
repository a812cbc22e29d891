"""The Beam build equals the one-machine build, record by record, on a few sample faces.

Needs apache-beam, which the default environment does not hold: `make test` runs this file in
the Beam environment (`make beam-env`, docs/data.md "Beam"); elsewhere it is skipped.
"""

import json
import os
import shutil

import numpy as np
import pytest
from data_helpers import detectable_sample_faces
from PIL import Image

beam_build = pytest.importorskip(
    "data_pipeline.beam_build",
    reason="apache-beam is not installed here: run `make beam-env` and `make test-beam`",
    exc_type=ImportError,
)
from data_pipeline import build, tfds_builder  # noqa: E402

KWARGS = dict(size=64, per_face=2, seed=3)
# two worker processes: examples must not depend on which worker makes them, nor in what order
DIRECT = [
    "--runner=DirectRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    faces = tmp_path_factory.mktemp("faces")
    paths = detectable_sample_faces(5)
    for i, path in enumerate(paths):
        Image.open(path).save(faces / f"{20 + i}_{i % 2}_1_2017.jpg", quality=95)
    shutil.copy(paths[0], faces / "zz_again.jpg")  # a near-duplicate of the first
    (faces / "empty.jpg").write_bytes(b"")  # skipped with its reason by both
    out = tmp_path_factory.mktemp("out")
    one = build.build_dataset(str(faces), str(out / "one"), progress=False, **KWARGS)
    beam = beam_build.build_dataset(str(faces), str(out / "beam"), beam_args=DIRECT, **KWARGS)
    return out / "one", out / "beam", one, beam


def _files(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, names in os.walk(root)
        for f in names
        if "tfds" not in os.path.relpath(d, root).split(os.sep)
    )


def test_beam_build_writes_the_same_files_byte_for_byte(builds):
    one, beam, _, _ = builds
    names = _files(one)
    assert names == _files(beam)
    assert sum(n.startswith("pairs/mask/") for n in names) == 10  # 5 faces x 2, duplicate dropped
    for name in names:
        if name != "summary.json":
            assert (one / name).read_bytes() == (beam / name).read_bytes(), name


def test_beam_build_summary_counts_equal(builds):
    _, _, one, beam = builds
    for key in ("faces_used", "skipped", "skipped_examples", "examples", "examples_per_split",
                "coco_images", "examples_per_category", "difference_mask_iou_mean"):  # fmt: skip
        assert json.loads(json.dumps(one[key])) == json.loads(json.dumps(beam[key])), key
    assert one["skipped"] == {"zero-byte file": 1, "near-duplicate": 1}


def test_beam_build_tfds_records_equal(builds):
    one, beam, _, _ = builds
    for split in tfds_builder.SPLITS:
        a = sorted(tfds_builder.load_numpy(str(one), split), key=lambda e: e["id"])
        b = sorted(tfds_builder.load_numpy(str(beam), split), key=lambda e: e["id"])
        assert [e["id"] for e in a] == [e["id"] for e in b] and a, split
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{split} {x['id']} {key}")
