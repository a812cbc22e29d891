"""launch/reconstruct.py end to end with a tiny trained inpainter and a user mask."""

import subprocess
import sys

import numpy as np
import pytest
from inpaint_tiny import REPO, tiny_config
from PIL import Image
from skimage import data

from jaxinpaint import train


@pytest.fixture(scope="module")
def inpainter_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("inpainter")
    config = tiny_config()
    config.total_steps = 1
    train.train_and_evaluate(config, str(workdir))
    return workdir


def run(*args):
    proc = subprocess.run(
        [sys.executable, "launch/reconstruct.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_photo_with_a_mask_file_is_reconstructed(inpainter_workdir, tmp_path):
    photo = data.astronaut()
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:148, 212:238] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out" / "result.png"
    rc, log = run(
        f"--input={tmp_path / 'photo.jpg'}",
        f"--mask={tmp_path / 'mask.png'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
        "--side_by_side",
    )
    assert rc == 0, log
    assert "reconstructed 1 of 1 face(s)" in log
    result = np.asarray(Image.open(out))
    assert result.shape == (512, 1024, 3)
    src = np.asarray(Image.open(tmp_path / "photo.jpg"))
    np.testing.assert_array_equal(result[:, :512], src)
    changed = np.any(result[:, 512:] != src, axis=-1)
    assert changed[135:148, 212:238].mean() > 0.9 and not changed[:100].any()


def test_no_face_is_written_unchanged_with_a_message(inpainter_workdir, tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    mask = np.zeros((96, 128), np.uint8)  # an empty mask: nothing to place a face around
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "noise_out.png"
    rc, log = run(
        f"--input={tmp_path / 'noise.png'}",
        f"--mask={tmp_path / 'mask.png'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
    )
    assert rc == 0 and "no face found" in log, log
    np.testing.assert_array_equal(np.asarray(Image.open(out)), noise)


def test_bad_inputs_fail_cleanly_without_output(inpainter_workdir, tmp_path):
    (tmp_path / "not_a_photo.jpg").write_text("<html>hello</html>")
    out = tmp_path / "never.png"
    rc, log = run(
        f"--input={tmp_path / 'not_a_photo.jpg'}",
        f"--mask={tmp_path / 'not_a_photo.jpg'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
    )
    assert rc == 1 and "is not a readable image" in log, log
    Image.fromarray(data.astronaut()).save(tmp_path / "photo.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small_mask.png")
    for args, code, message in [
        (
            [f"--input={tmp_path / 'not_a_photo.jpg'}", f"--mask={tmp_path / 'small_mask.png'}"],
            2,
            "not an image",
        ),
        (
            [f"--input={tmp_path / 'photo.png'}", f"--mask={tmp_path / 'small_mask.png'}"],
            1,
            "the mask is (8, 8) but the photo is (512, 512)",
        ),
        (
            [f"--input={tmp_path / 'missing.jpg'}", f"--mask={tmp_path / 'small_mask.png'}"],
            1,
            "does not exist",
        ),
        ([f"--input={tmp_path / 'photo.png'}"], 1, "give --detector"),
    ]:
        rc, log = run(*args, f"--inpainter={inpainter_workdir}", f"--output={out}")
        assert rc == code and message in log, log
    gif = tmp_path / "never.gif"
    rc, log = run(f"--input={tmp_path / 'photo.png'}", f"--inpainter={tmp_path}", f"--output={gif}")
    assert rc == 1 and "never.gif must end in .png, .jpg" in log, log  # before loading models
    rc, log = run(
        f"--input={tmp_path / 'photo.png'}",
        f"--mask={tmp_path / 'small_mask.png'}",
        f"--inpainter={tmp_path}",
        f"--output={out}",
    )
    assert rc == 1 and "config.json not found" in log, log
    assert not out.exists() and not gif.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
