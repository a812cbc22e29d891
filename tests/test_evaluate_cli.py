"""launch/evaluate.py end to end: a tiny dataset, a 1-step inpainter, FID weights as a torch
file; and its errors for bad weights."""

import json
import subprocess
import sys

import fid_reference
import pytest
import torch
from data_helpers import detectable_sample_faces
from inpaint_tiny import REPO
from PIL import Image

from data_pipeline import build


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_workdir):
    root = tmp_path_factory.mktemp("evaluate")
    faces = root / "faces"
    faces.mkdir()
    for i, path in enumerate(detectable_sample_faces(3)):
        Image.open(path).save(faces / f"{i}.jpg", quality=95)
    build.build_dataset(str(faces), str(root / "data"), size=48, per_face=2, progress=False)
    (root / "work").symlink_to(tiny_workdir)
    state = fid_reference.weights_file_state_dict(fid_reference.random_pytorch_fid_inception())
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, root / "inception.pth")
    return root


def run(setup, *args):
    proc = subprocess.run(
        [
            sys.executable,
            "launch/evaluate.py",
            f"--workdir={setup / 'work'}",
            f"--dataset={setup / 'data'}",
            "--split=train",
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_report_with_fid_and_baselines(setup):
    out = setup / "report"
    rc, log = run(setup, f"--inception={setup / 'inception.pth'}", f"--out={out}")
    assert rc == 0, log
    summary = json.loads((out / "eval_train.json").read_text())
    assert set(summary["fid"]) == {"model", "telea", "ns", "harmonic", "biharmonic"}
    assert all(v > 0 for v in summary["fid"].values())
    assert {"model", "telea", "ns"} <= set(summary["overall"])
    markdown = (out / "eval_train.md").read_text()
    assert "## FID against the originals" in markdown and "| telea |" in markdown
    assert (out / "best_worst_train.png").is_file()
    header = next(line for line in log.splitlines() if line.startswith("method"))
    assert header.split() == [
        "method",
        "PSNR",
        "PSNR",
        "hole",
        "SSIM",
        "SSIM",
        "hole",
        "LPIPS",
        "structure",
        "FID",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pth", None, "missing.pth do not exist"),
        ("corrupt.pth", b"not a torch file", "corrupt.pth are not a readable torch file"),
        ("tensor.pth", "tensor", "tensor.pth hold a Tensor, not a state dict"),
    ],
)
def test_unreadable_inception_weights_are_named(tmp_path, name, content, message):
    from launch import evaluate

    path = tmp_path / name
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        evaluate._inception_state_dict(str(path))


def test_bad_inception_weights_are_one_clear_error(setup, tmp_path):
    """The whole command: one line, exit status 1, no report (the readers' other refusals are
    checked without a process each, above)."""
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    rc, log = run(setup, f"--inception={path}", f"--out={tmp_path / 'report'}")
    assert rc == 1, log
    assert "other.pth: unexpected entry 'conv.weight'" in log, log
    assert not (tmp_path / "report").exists()


def test_photos_through_reconstructor_at_their_own_resolution(setup):
    out = setup / "photos"
    rc, log = run(setup, "--photos", f"--out={out}")
    assert rc == 0, log
    assert "through Reconstructor" in log
    summary = json.loads((out / "eval_train_photos.json").read_text())
    overall = summary["overall"]
    assert {"model", "telea", "ns"} <= set(overall) and overall["n"] >= 1
    assert all(overall[m]["psnr_hole"] > 5 for m in ("model", "telea", "ns"))
    # The photos are the dataset's source photos (larger than the 48 px crops).
    assert Image.open(out / "photos_train.png").height > 48
    # Each comes again with its occluder across the face's edge: a row by window crossing.
    assert summary["by_window"]["crosses: yes"]["n"] >= 1
    assert "| crosses: yes |" in (out / "eval_train_photos.md").read_text()


def test_photos_with_the_holes_the_detector_finds(setup, detector_checkpoint):
    out = setup / "photos_detector"
    args = ("--photos", f"--detector={detector_checkpoint}", f"--out={out}", "--max_examples=2")
    rc, log = run(setup, *args)
    assert rc == 0, log
    assert "holes the detector found (model_final.pt, score >= 0.7 by occluder" in log
    exact = json.loads((out / "eval_train_photos.json").read_text())["overall"]
    found = json.loads((out / "eval_train_photos_detector.json").read_text())["overall"]
    assert found["n"] == exact["n"] == 2
    # every method filled the detector's (larger) hole, so every score moved
    assert all(found[m]["psnr"] != exact[m]["psnr"] for m in ("model", "telea", "ns"))
    assert (
        "every method fills holes the detector found"
        in (out / "eval_train_photos_detector.md").read_text()
    )
    assert (out / "photos_train_detector.png").is_file()


def test_a_detector_that_trained_on_the_split_is_refused(setup, detector_checkpoint, tmp_path):
    from data_pipeline import splits

    trained = tmp_path / "detector"
    trained.mkdir()
    (trained / "model_final.pt").symlink_to(detector_checkpoint)
    faces = splits.read_index_faces(str(setup / "data"), "train")
    splits.write_record(str(trained), "test", faces)
    out = tmp_path / "report"
    rc, log = run(setup, "--photos", f"--detector={trained / 'model_final.pt'}", f"--out={out}")
    assert rc == 1, log
    assert "would not be honest" in log and not out.exists()
    rc, log = run(setup, f"--detector={trained / 'model_final.pt'}", f"--out={out}")
    assert rc == 1 and "--detector scores whole photos: give --photos too" in log, log
