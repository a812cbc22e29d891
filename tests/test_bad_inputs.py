"""The bad-input corpus (tests/bad_inputs.py) through the photo readers and reconstruct's folder
mode: every input is read or refused with its reason, never a traceback or a half-written file.
bench/bad_inputs.py runs the whole corpus through every command."""

import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from bad_inputs import ACCEPTED, REFUSED, build_corpus
from inpaint_tiny import REPO, tiny_config
from PIL import Image

from data_pipeline import images
from jaxinpaint import inference, train
from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.gan import InpaintingGAN

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build_corpus(folder, commands=("load_photo", "load_rgb", "reconstruct"))


def test_the_corpus_is_large_enough_and_named_once(corpus):
    _, cases = corpus
    assert len(cases) >= 30
    assert len({c.name for c in cases}) == len(cases)
    kinds = {c.kind for c in cases}
    assert {"photo", "mask", "workdir", "detector"} <= kinds


@pytest.mark.parametrize("reader", ["load_photo", "load_rgb"])
def test_readers_give_rgb_or_a_reason(corpus, reader):
    """HxWx3 uint8 (upright) for what the reader accepts, SkipImage for the rest: nothing else."""
    _, cases = corpus
    read = getattr(images, reader)
    wrong = []
    for case in cases:
        if reader not in case.expect or case.skip:
            continue
        try:
            rgb = read(case.path)
        except images.SkipImage as e:
            outcome = f"skipped: {e.reason}"
        else:
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, case.name
            if reader == "load_photo":
                assert rgb.shape[1::-1] == case.size, case.name  # upright
            outcome = ACCEPTED
        if (outcome == ACCEPTED) != (case.expect[reader] == ACCEPTED):
            wrong.append(f"{case.name}: {outcome}")
    assert not wrong, wrong


@pytest.fixture(scope="module")
def inpainter_workdir(tmp_path_factory):
    """An untrained tiny inpainter saved as a workdir at step 0: what reconstruct reads, without
    compiling a training step."""
    workdir = tmp_path_factory.mktemp("inpainter")
    config = tiny_config()
    state = jax.jit(InpaintingGAN(config).init)(jax.random.key(0))
    ckpt = Checkpointer(workdir / "checkpoints", keep=1)
    ckpt.save(state, data_position=0)
    ckpt.close()
    inference.save_config(config, str(workdir))
    return workdir


def test_reconstruct_folder_of_bad_photos_and_masks(corpus, inpainter_workdir, tmp_path):
    """Folder mode over every photo and mask case, each with a mask beside it (no detector):
    the good ones are written at their upright size, the broken ones are listed as failed and
    leave nothing behind; no traceback, exit status 2."""
    folder, cases = corpus
    out = tmp_path / "out"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_DISABLE_MOST_OPTIMIZATIONS="1",
        PYTHONPATH=str(REPO),  # this checkout's packages, whatever an editable install points at
    )
    proc = subprocess.run(
        [
            sys.executable,
            "launch/reconstruct.py",
            f"--input={folder / 'lama'}",
            f"--output={out}",
            f"--inpainter={inpainter_workdir}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert "Traceback" not in log and proc.returncode == 2, log
    wrong = []
    decided = [c for c in cases if c.kind in ("photo", "mask") and not c.skip]
    for case in decided:
        photo = case.photo if case.kind == "mask" else case.lama
        dst = out / os.path.basename(photo)
        if case.expect["reconstruct"] == ACCEPTED:
            if not dst.is_file():
                wrong.append(f"{case.name}: not written")
            elif Image.open(dst).size != case.size:
                wrong.append(f"{case.name}: written at {Image.open(dst).size}, not {case.size}")
        elif case.expect["reconstruct"] == REFUSED and os.path.lexists(dst):
            wrong.append(f"{case.name}: written, but it is not a readable photo or mask")
    assert not wrong, wrong
    leftovers = [p for p in out.rglob("*") if re.search(r"\.tmp|\.old-", p.name)]
    assert not leftovers
    failed = {
        ln.split(": ")[0].split("/")[-1] for ln in log.splitlines() if ln.startswith("  failed ")
    }
    refused = {
        os.path.basename(c.photo if c.kind == "mask" else c.lama)
        for c in decided
        if c.expect["reconstruct"] == REFUSED and c.name != "directory_named_jpg"  # not listed
    }
    assert failed == refused | {"loop_b.jpg"}, log  # the loop's other link is a photo too


# What the corpus found, one test per fix.


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "the --config file cannot be loaded: Failed loading config file"),
        ("def get_config(:\n", "cannot be loaded: line 1: invalid syntax"),
    ],
)
def test_a_config_file_that_cannot_be_loaded_is_one_line(tmp_path, content, message):
    """ml_collections defers a missing file's error to the first use of the config (inside the
    training code, as a traceback); a syntax error it raises from the flag parser."""
    path = tmp_path / "config.py"
    if content is not None:
        path.write_text(content)
    code = (
        "import sys\nfrom ml_collections import config_flags\nimport launch\n"
        "config_flags.DEFINE_config_file('config', None, '')\n"
        "launch._parse_config_overrides(['x', '--config=' + sys.argv[1]])\nprint('parsed')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert str(path) in proc.stderr and "parsed" not in proc.stdout


@pytest.mark.parametrize(("field", "value"), [("total_steps", -5), ("global_batch_size", 0)])
def test_steps_and_batch_below_one_are_refused_before_any_output(tmp_path, field, value):
    """total_steps=-5 used to 'finish' at once, leaving a workdir with a config.json and no
    checkpoint; a batch of 0 failed deep in the input pipeline, leaving the same."""
    config = tiny_config()
    config[field] = value
    with pytest.raises(ValueError, match=rf"config.{field} must be >= 1, got {value}"):
        train.train_and_evaluate(config, str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()


def _copy(workdir, tmp_path):
    import shutil

    return shutil.copytree(workdir, tmp_path / "work")


@pytest.mark.parametrize(
    ("config_json", "message"),
    [("[1, 2, 3]", "holds a JSON list; expected a config object"), (None, "lacks a field")],
)
def test_a_config_json_that_is_no_config_is_one_error(
    inpainter_workdir, tmp_path, config_json, message
):
    work = _copy(inpainter_workdir, tmp_path)
    config_path = work / "config.json"
    if config_json is None:  # valid JSON without the generator's fields
        fields = json.loads(config_path.read_text())
        del fields["gen"]
        config_json = json.dumps(fields)
    config_path.write_text(config_json)
    with pytest.raises(ValueError, match=message):
        inference.Inpainter.from_workdir(str(work))


def test_a_workdir_without_checkpoints_is_left_as_it_was(inpainter_workdir, tmp_path):
    """Orbax's manager creates its folder when opened: reading must not write."""
    import shutil

    work = _copy(inpainter_workdir, tmp_path)
    shutil.rmtree(work / "checkpoints")
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        inference.Inpainter.from_workdir(str(work))
    assert sorted(p.name for p in work.iterdir()) == ["config.json"]


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_a_damaged_checkpoint_is_one_error_without_tracebacks(
    inpainter_workdir, tmp_path, capfd, damage
):
    """Orbax raises a bare Exception for unreadable array data (it escaped as a traceback), and
    the reads it abandons print theirs as they are collected."""
    work = _copy(inpainter_workdir, tmp_path)
    for path in (p for p in (work / "checkpoints").rglob("*") if p.parent.name == "d"):  # data
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 3])
        else:
            path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    with pytest.raises(ValueError, match=r"cannot be read \(a truncated or corrupt file\?\)"):
        inference.Inpainter.from_workdir(str(work))
    assert "Traceback" not in capfd.readouterr().err


def test_a_garbled_dataset_info_is_one_error(tmp_path):
    """TFDS raises protobuf's ParseError (no ValueError): evaluate and cache_masks printed a
    traceback."""
    from data_pipeline import tfds_builder
    from detector import sources

    (tmp_path / "dataset_info.json").write_text("{garbled")
    for read in (lambda: tfds_builder.open_builder(str(tmp_path)),
                 lambda: sources.open_examples(tmp_path)):  # fmt: skip
        with pytest.raises(ValueError, match=r"dataset_info.json cannot be read"):
            read()


def test_the_detector_finds_nothing_in_a_strip_too_thin_for_its_resize():
    """A 2x600 px photo resized to the detector's 64 px min side (its long side capped at 64)
    has a side of 0 px: torch raised, and the mask cache lost the whole run."""
    import torch
    from config_files import load_config

    from detector import model as model_lib
    from detector import predict

    torch.manual_seed(0)
    config = load_config("detector")
    config.model.backbone = "resnet18"  # the same resize; quicker to build
    model = model_lib.build_model(config.model, 64, load_weights=False)
    detector = predict.Detector(model, score_thresh=0.0)
    strip, square = np.zeros((600, 2, 3), np.uint8), np.full((64, 64, 3), 128, np.uint8)
    (mask, boxes, chosen), (other, _, _) = detector.masks([strip, square])
    assert mask.shape == (600, 2) and not mask.any() and not boxes.any() and chosen == []
    assert other.shape == (64, 64)
