"""The detector's command lines end to end: train, resume, evaluate, fill the mask cache."""

import json
import logging
import pathlib
import subprocess
import sys

import pytest
from test_detector_ddp import tiny_train_config

from detector import mask_cache, synthetic, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def run(script, *flags, check=True):
    cmd = [sys.executable, str(ROOT / "launch" / script), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return proc


def train_flags(coco, workdir, steps):
    return [
        f"--config={ROOT / 'configs' / 'detector_demo.py'}",
        "--config.data.source=coco",
        f"--config.data.coco_dir={coco}",
        f"--config.train.num_steps={steps}",
        "--config.train.warmup_steps=1",
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=1",
        "--config.model.rpn_pre_nms_top_n_test=100",
        "--config.model.rpn_post_nms_top_n_test=50",
        "--config.eval.max_images=2",
        f"--workdir={workdir}",
    ]


def test_train_resume_eval_and_cache(tmp_path, caplog):
    coco = synthetic.make_coco(tmp_path / "coco", num_train=4, num_test=2, size=64, seed=11)
    work = tmp_path / "run"
    # Training runs in this process (cheaper than two more interpreters); the CLIs follow.
    train.train_and_evaluate(tiny_train_config(coco, num_steps=1), work)
    with caplog.at_level(logging.INFO, logger="detector.train"):
        result = train.train_and_evaluate(tiny_train_config(coco, num_steps=2), work)
    assert result["step"] == 2
    assert "resumed from" in caplog.text and "ckpt_00000001.pt at step 1" in caplog.text
    steps = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "loss" in r] == [1, 2]  # step 2 continued, not restarted
    assert {"bbox/AP", "segm/AP50"} <= set(steps[-1]["eval"])
    report = json.loads((work / "eval" / "step_00000002" / "coco_eval.json").read_text())
    assert set(report) >= {"bbox", "segm"} and "per_category" in report["segm"]
    assert len(list((work / "eval" / "step_00000002" / "vis").glob("*.png"))) == 1

    proc = run("train_detector.py", *train_flags(coco, work, 2), "--eval_only")
    assert "bbox AP" in proc.stdout

    cache = tmp_path / "cache"
    (coco / "test" / "broken.png").write_bytes(b"\x89PNG\r\n")  # a torn file among the images
    proc = run(
        "cache_masks.py",
        f"--detector={work / 'model_final.pt'}",
        f"--dataset={coco / 'test'}",
        f"--out={cache}",
        "--num_shards=1",
        "--score_thresh=0.0",
    )
    assert "2 examples" in proc.stdout and "Traceback" not in proc.stderr
    assert "skipped 1 files" in proc.stdout and "broken.png: not an image" in proc.stdout
    assert json.loads((cache / "mask_cache.json").read_text())["detector_sha256"]
    cached = mask_cache.read_mask_cache(cache)
    assert sorted(cached) == ["test_00001", "test_00002"]  # ids are the file stems
    assert cached["test_00001"]["mask"].shape == (64, 64)


def test_user_errors_exit_without_traceback(tmp_path):
    proc = run(
        "train_detector.py", *train_flags(tmp_path / "nowhere", tmp_path / "w", 1), check=False
    )
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run("cache_masks.py", f"--detector={bad}", f"--dataset={tmp_path}", check=False)
    assert proc.returncode == 1 and "cannot load it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_coco_batches_resume_mid_epoch_with_the_next_batch(tmp_path):
    coco = synthetic.make_coco(tmp_path / "coco", num_train=6, num_test=1, size=32, seed=5)
    config = tiny_train_config(coco)  # batch 2: 3 batches per epoch

    def image_ids(start_step, n):
        batches, _ = train._coco_batches(config, rank=0, world=1, start_step=start_step)
        return [[int(t["image_id"]) for t in next(batches)[1]] for _ in range(n)]

    whole = image_ids(0, 6)  # two epochs
    assert whole[:3] != whole[3:]  # each epoch is shuffled anew
    assert image_ids(4, 2) == whole[4:6]  # resumed in epoch 1 after its first batch
