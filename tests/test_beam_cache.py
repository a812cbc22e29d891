"""The Beam mask cache equals `mask_cache.cache_masks`' cache on a dataset built from sample faces.

A tiny, randomly initialised detector (threshold 0 keeps its instances) is enough: equality is
about reading, batching, sharding and writing, not about what the detector finds. Needs
apache-beam: `make test` runs this file in the Beam environment; elsewhere it is skipped.
"""

import functools
import json

import numpy as np
import pytest
import torch
from config_files import load_config
from data_helpers import detectable_sample_faces
from PIL import Image
from test_detector_model import tiny_model_config

beam_cache = pytest.importorskip(
    "detector.beam_cache",
    reason="apache-beam is not installed here: run `make beam-env` and `make test-beam`",
    exc_type=ImportError,
)
from data_pipeline import build  # noqa: E402
from detector import checkpoint, mask_cache, predict, sources  # noqa: E402
from detector import model as model_lib  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    faces = tmp_path_factory.mktemp("faces")
    for i, path in enumerate(detectable_sample_faces(3)):
        Image.open(path).save(faces / f"{20 + i}_{i % 2}_1_2017.jpg", quality=95)
    out = tmp_path_factory.mktemp("data") / "set"
    build.build_dataset(str(faces), str(out), size=SIZE, per_face=1, seed=1, progress=False)
    return out


@pytest.fixture(scope="module")
def make_detector(tmp_path_factory):
    """A checkpoint path in a partial, as the launcher passes it: Beam pickles the DoFn several
    times, and a pickled model would cost half a minute each time (140 MB through zlib)."""
    config = load_config("detector")
    config.model = tiny_model_config()
    config.model.backbone, config.model.mask_head_layers = "resnet18", (64, 64)  # 1/4 the work
    torch.manual_seed(0)
    model = model_lib.build_model(config.model, SIZE, load_weights=False)
    path = tmp_path_factory.mktemp("detector") / "model_final.pt"
    checkpoint.save(path, model=model, optimizer=None, step=0, config=config, image_size=SIZE)
    return functools.partial(
        predict.Detector.from_checkpoint, str(path), score_thresh=0.0, batch_size=2
    )


def test_beam_cache_equals_the_one_process_cache(dataset, make_detector, tmp_path):
    examples = sources.open_examples(dataset)
    one = mask_cache.cache_masks(
        make_detector(), examples.pairs, tmp_path / "one", num_shards=2, batch_size=2, on_face=0.3
    )
    beam, skipped = beam_cache.cache_masks(
        make_detector, dataset, tmp_path / "beam", num_shards=2, batch_size=2, on_face=0.3
    )
    assert skipped == []
    assert one == beam and one["num_examples"] == 3
    assert sorted(p.name for p in (tmp_path / "beam").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    a = mask_cache.read_mask_cache(tmp_path / "one")
    b = mask_cache.read_mask_cache(tmp_path / "beam")
    assert sorted(a) == sorted(b)
    assert sum(r["labels"].size for r in a.values()), "threshold 0 keeps some instances"
    for example_id, want in a.items():
        got = b[example_id]
        for key in ("mask", "box_mask", "labels"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{example_id} {key}")
        # a batch of other images changes the floats in the last bits (test_detector_cache)
        for key in ("scores", "boxes"):
            np.testing.assert_allclose(
                got[key], want[key], rtol=1e-5, atol=1e-4, err_msg=example_id
            )
    meta = json.loads((tmp_path / "beam" / "mask_cache.json").read_text())
    assert meta["num_shards"] == 2 and meta["on_face"] == 0.3


def test_beam_cache_reads_an_image_folder_and_reports_bad_files(make_detector, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)).save(folder / f"p{i}.png")
    (folder / "broken.png").write_bytes(b"")
    meta, skipped = beam_cache.cache_masks(make_detector, folder, tmp_path / "c", num_shards=1)
    assert meta["num_examples"] == 2
    assert sorted(mask_cache.read_mask_cache(tmp_path / "c")) == ["p0", "p1"]
    assert [(p.rsplit("/", 1)[-1], r) for p, r in skipped] == [("broken.png", "zero-byte file")]
