"""Detector training under DistributedDataParallel: 2 gloo processes on the CPU stay in step, and
stop together when one of them meets a non-finite loss."""

import os
import pathlib
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from config_files import load_config

from detector import data, synthetic, train
from detector import model as model_lib

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")
TIMEOUT_S = 240


def tiny_train_config(coco_dir, num_steps=1):
    config = load_config("detector_demo")
    config.data.source = "coco"  # the synthetic COCO set made by the test
    config.data.coco_dir = str(coco_dir)
    config.model.rpn_pre_nms_top_n_test = 100
    config.model.rpn_post_nms_top_n_test = 50
    config.train.num_steps = num_steps
    config.train.warmup_steps = 1
    config.train.log_every = 1
    config.eval.max_images = 1
    config.eval.num_visualizations = 1
    return config


def _join_group(rank, world, port):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)


def _worker(rank, world, port, coco_dir, workdir, out_dir):
    _join_group(rank, world, port)
    try:
        result = train.train_and_evaluate(tiny_train_config(coco_dir), workdir)
        flat = torch.cat([p.detach().flatten() for p in result["model"].parameters()])
        torch.save({"params": flat, "step": result["step"]}, pathlib.Path(out_dir) / f"{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _nan_worker(rank, world, port, coco_dir, workdir, out_dir):
    """Rank 1's images are NaN, so only its loss is not finite; each rank writes what it raised."""
    _join_group(rank, world, port)
    if rank == 1:
        getitem = data.CocoInstances.__getitem__
        data.CocoInstances.__getitem__ = lambda self, i: (
            getitem(self, i)[0] * float("nan"),
            getitem(self, i)[1],
        )
    try:
        train.train_and_evaluate(tiny_train_config(coco_dir), workdir)
        outcome = "finished"
    except FloatingPointError as err:
        outcome = f"raised: {err}"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    (pathlib.Path(out_dir) / f"{rank}.txt").write_text(outcome)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two(worker, tmp_path, coco):
    """Run `worker` in 2 spawned processes; fail the test if they have not ended in TIMEOUT_S."""
    out = tmp_path / "out"
    out.mkdir()
    args = (2, _free_port(), str(coco), str(tmp_path / "run"), str(out))
    ctx = mp.start_processes(worker, args=args, nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail(f"2-process DDP run did not finish in {TIMEOUT_S}s")
    return out


def test_two_process_gloo_step_keeps_replicas_equal(tmp_path):
    coco = synthetic.make_coco(tmp_path / "coco", num_train=4, num_test=1, size=64, seed=7)
    out = _run_two(_worker, tmp_path, coco)
    r0 = torch.load(out / "0.pt", weights_only=True)
    r1 = torch.load(out / "1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 1
    # Each rank saw a different image; DDP averaged the gradients, so the replicas agree.
    torch.testing.assert_close(r0["params"], r1["params"], rtol=0, atol=1e-6)
    torch.manual_seed(0)  # train_and_evaluate's initial weights (config.seed = 0)
    config = tiny_train_config(coco)
    init = model_lib.build_model(config.model, 64)
    init_flat = torch.cat([p.detach().flatten() for p in init.parameters()])
    assert (init_flat - r0["params"]).abs().max() > 0  # the step did change the weights
    assert (tmp_path / "run" / "model_final.pt").is_file()
    assert (tmp_path / "run" / "eval" / "step_00000001" / "coco_eval.md").is_file()


def test_a_non_finite_loss_on_one_rank_stops_both(tmp_path):
    # Without the all-reduced flag, rank 0 would wait forever in the gradient all-reduce that
    # rank 1 never joins, and this test would time out.
    coco = synthetic.make_coco(tmp_path / "coco", num_train=4, num_test=1, size=64, seed=7)
    out = _run_two(_nan_worker, tmp_path, coco)
    for rank in (0, 1):
        outcome = (out / f"{rank}.txt").read_text()
        assert outcome.startswith("raised: detector loss is not finite at step 0"), outcome
    assert not (tmp_path / "run" / "model_final.pt").exists()
