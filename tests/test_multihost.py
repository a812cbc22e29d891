"""Two JAX processes on localhost (CPU devices, gloo collectives) train like one process.

Each process runs `launch/train.py` with `--coordinator/--num_processes/--process_id`, reads its
own half of every global batch and joins one 2-device mesh. The reference is one process with two
simulated CPU devices on the same global batches, so the collectives sum the same two numbers.
"""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from inpaint_tiny import REPO

from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.gan import InpaintingGAN
from jaxinpaint.inference import load_config

CONFIG = """
import sys
sys.path.insert(0, {tests!r})
from inpaint_tiny import tiny_config


def get_config(arg=None):
    c = tiny_config()
    c.global_batch_size = 4  # two examples per process
    c.total_steps = 2
    c.checkpoint_every = 2
    c.sample_every = 2
    c.log_every = 1
    return c
"""
TIMEOUT = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(devices: int) -> dict:
    e = dict(os.environ)
    e.update(
        JAX_PLATFORMS="cpu",
        JAX_DISABLE_MOST_OPTIMIZATIONS="true",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    )
    return e


def train(config_path, workdir, *overrides, processes=1, devices_per_process=1):
    """Runs launch/train.py in `processes` processes; returns their (returncode, output)s."""
    cmd = [sys.executable, "launch/train.py", f"--config={config_path}", f"--workdir={workdir}"]
    cmd += [f"--config.{o}" for o in overrides]
    commands = [cmd]
    if processes > 1:
        cmd = [*cmd, f"--coordinator=127.0.0.1:{free_port()}", f"--num_processes={processes}"]
        commands = [[*cmd, f"--process_id={i}"] for i in range(processes)]
    procs = [
        subprocess.Popen(
            c,
            cwd=REPO,
            env=env(devices_per_process),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for c in commands
    ]
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            results.append((p.returncode, out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def restored_state(workdir, step):
    config = load_config(str(workdir))
    gan = InpaintingGAN(config)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
        jax.eval_shape(gan.init, jax.random.key(0)),
    )
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=10)
    try:
        state, meta = ckpt.restore(abstract, step)
    finally:
        ckpt.close()
    return state, meta


def rel_err(a, b):
    flat = lambda s: np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(s))])
    a, b = flat(a), flat(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "two_process.py"
    path.write_text(CONFIG.format(tests=str(REPO / "tests")))
    return path


def test_two_processes_train_and_resume_like_one(config_path, tmp_path):
    ref, multi = tmp_path / "reference", tmp_path / "two_processes"
    [(rc, out)] = train(config_path, ref, "total_steps=4", devices_per_process=2)
    assert rc == 0, out

    results = train(config_path, multi, processes=2)
    assert [rc for rc, _ in results] == [0, 0], results
    assert "on 2 devices" in results[0][1]
    # Only process 0 writes samples and event files; both took part in the checkpoint.
    assert sorted(os.listdir(multi / "samples")) == ["step_0000002.png"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(multi))

    # Resume the two-process run from its checkpoint at step 2 up to step 4.
    results = train(config_path, multi, "total_steps=4", processes=2)
    assert [rc for rc, _ in results] == [0, 0], results
    assert "Resumed" in results[0][1]

    for step in (2, 4):
        got, meta = restored_state(multi, step)
        want, want_meta = restored_state(ref, step)
        assert meta == want_meta == {"step": step, "data_position": step}
        assert rel_err(got, want) <= 1e-6, step


def test_batch_that_does_not_split_over_processes_is_refused(config_path, tmp_path):
    results = train(config_path, tmp_path / "bad", "global_batch_size=3", processes=2)
    for rc, out in results:
        assert rc == 1, out
        assert "global_batch_size=3 must divide by the number of devices (2" in out
