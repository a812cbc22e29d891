"""Train step and loop: golden values, overfitting, resume, 8 devices, NaN stop, config errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from inpaint_tiny import REPO, synthetic_batch, tiny_config

from jaxinpaint import train
from jaxinpaint.event_writer import EventWriter, crc32c, read_scalars
from jaxinpaint.gan import FAST_COMPILE, InpaintingGAN

pytestmark = pytest.mark.usefixtures("fast_compile")


# Two steps of tiny_config() from init seed 0 on synthetic_batch(32, 2), dropout key 1.
GOLDEN = {
    "gen/loss": 20.87861,
    "gen/l1_hole": 0.02168339,
    "gen/perceptual": 10.7524,
    "gen/style": 0.1672292,
    "disc/loss": 4.054047,
    "gen/grad_norm": 77.51888,
    "after/gen/loss": 19.77569,
    "after/disc/loss": 4.020109,
}


@pytest.fixture(scope="module")
def tiny():
    config = tiny_config()
    gan = InpaintingGAN(config)
    init = jax.jit(gan.init, compiler_options=FAST_COMPILE)
    step = jax.jit(gan.train_step)
    frozen = jax.tree.map(jax.numpy.asarray, gan.frozen_params())
    batch = synthetic_batch(config.image_size, config.global_batch_size)
    return init, step, frozen, batch


def _run(script: str, *, env_extra=None, timeout=240) -> dict:
    env = dict(os.environ, **(env_extra or {}))  # with the session's compilation cache
    env.setdefault("JAX_PLATFORMS", "cpu")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stderr": proc.stderr}


def test_one_step_matches_golden_values(tiny):
    init, step, frozen, batch = tiny
    state = init(jax.random.key(0))
    state, metrics = step(state, batch, jax.random.key(1), frozen)
    got = {k: float(metrics[k]) for k in GOLDEN if not k.startswith("after/")}
    # The second step's losses see the first update of both players.
    state, metrics = step(state, batch, jax.random.key(1), frozen)
    got["after/gen/loss"] = float(metrics["gen/loss"])
    got["after/disc/loss"] = float(metrics["disc/loss"])
    for key, want in GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=2e-4), key
    assert int(state.step) == 2


def test_generator_average_follows_the_weights(tiny):
    init, step, frozen, batch = tiny
    state = init(jax.random.key(0))
    after, _ = step(state, batch, jax.random.key(1), frozen)
    # Off (the tiny config's default): inference uses the weights themselves.
    for ema, new in zip(*map(jax.tree.leaves, (after.gen_ema, after.gen_params)), strict=True):
        np.testing.assert_array_equal(ema, new)

    config = tiny_config()
    config.gen_optim.ema = 0.99
    averaged = jax.jit(InpaintingGAN(config).train_step)
    state = init(jax.random.key(0))
    init_params = jax.tree.leaves(jax.device_get(state.gen_params))
    state, _ = averaged(state, batch, jax.random.key(1), frozen)
    first = jax.tree.leaves(jax.device_get(state.gen_params))
    state, _ = averaged(state, batch, jax.random.key(1), frozen)
    # The decay ramps up: 1/10 at step 0, 2/11 at step 1. The average after two steps, by hand:
    want = [
        (2 / 11) * ((1 / 10) * p0 + (9 / 10) * p1) + (9 / 11) * p2
        for p0, p1, p2 in zip(init_params, first, jax.tree.leaves(state.gen_params), strict=True)
    ]
    for got, w in zip(jax.tree.leaves(state.gen_ema), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"gen_optim\.ema"):
        config.gen_optim.ema = 1.0
        InpaintingGAN(config)


def test_loss_falls_when_overfitting_one_batch(tiny):
    init, step, frozen, batch = tiny
    state = init(jax.random.key(0))
    history = []
    for _ in range(30):
        state, metrics = step(state, batch, jax.random.key(1), frozen)
        history.append({k: float(v) for k, v in metrics.items()})
    first = history[0]
    last = {k: np.mean([h[k] for h in history[-3:]]) for k in ("gen/loss", "gen/perceptual")}
    assert last["gen/loss"] < 0.75 * first["gen/loss"], (first["gen/loss"], last)
    assert last["gen/perceptual"] < first["gen/perceptual"]


_LOOP_PRELUDE = """
import json, os, signal, sys
sys.path.insert(0, "tests")
import jax, numpy as np
jax.config.update("jax_disable_most_optimizations", True)
# Runs in one process and across tests compile the same steps: share the executables through
# the session's disk cache (JAX_COMPILATION_CACHE_DIR, tests/conftest.py), however fast.
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from inpaint_tiny import tiny_config
from jaxinpaint import train

def flat(state):
    leaves = jax.tree.leaves(jax.device_get(state))
    return np.concatenate([np.ravel(x) for x in leaves])
"""


def test_resume_after_sigterm_matches_uninterrupted_run(tmp_path):
    script = (
        _LOOP_PRELUDE
        + f"""
cfg = tiny_config()
cfg.total_steps = 4
straight = train.train_and_evaluate(cfg, "{tmp_path}/a")

# Interrupted run: SIGTERM arrives while step 3 is being prepared; the loop saves 3 and stops.
calls = {{"n": 0}}
original = train.Trainer.global_batch
def counting(self, local):
    calls["n"] += 1
    if calls["n"] == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return original(self, local)
train.Trainer.global_batch = counting
stopped = train.train_and_evaluate(cfg, "{tmp_path}/b")
train.Trainer.global_batch = original
meta = json.load(open("{tmp_path}/b/checkpoints/3/meta/metadata"))
resumed = train.train_and_evaluate(cfg, "{tmp_path}/b")
# A resume with another model is refused, naming the fields; config.json still fits the checkpoints.
other = tiny_config()
other.total_steps = 6
other.gen.widths = (4, 8, 16)
try:
    train.train_and_evaluate(other, "{tmp_path}/b")
    refused = ""
except ValueError as e:
    refused = str(e)
print(json.dumps({{
    "refused": refused,
    "config_widths": json.load(open("{tmp_path}/b/config.json"))["gen"]["widths"],
    "stopped_at": int(stopped.step),
    "meta": meta,
    "final_step": int(resumed.step),
    "max_diff": float(np.max(np.abs(flat(straight) - flat(resumed)))),
    "steps_saved": sorted(os.listdir("{tmp_path}/b/checkpoints")),
    "samples": sorted(os.listdir("{tmp_path}/a/samples")),
    "events": [f for f in os.listdir("{tmp_path}/a") if f.startswith("events.out")],
    "curves": os.path.isfile("{tmp_path}/a/curves.png"),
    "config": json.load(open("{tmp_path}/a/config.json"))["image_size"],
}}))
"""
    )
    out = _run(script)
    assert "gen.widths: [4, 8, 8] -> [4, 8, 16]" in out["refused"], out["refused"]
    assert out["config_widths"] == [4, 8, 8]
    assert out["stopped_at"] == 3
    assert out["meta"] == {"step": 3, "data_position": 3}
    assert out["final_step"] == 4
    assert out["max_diff"] == 0.0
    assert out["steps_saved"][-1] == "4" and "3" in out["steps_saved"]
    assert out["samples"] == ["step_0000002.png", "step_0000004.png"]
    assert len(out["events"]) == 1
    assert out["curves"]
    assert out["config"] == 32
    # The progress bar: of the whole run, and of the resumed one from where it stopped.
    assert "train: 100%" in out["stderr"] and "| 4/4 [" in out["stderr"]
    assert "| 3/4 [" in out["stderr"]


def test_non_finite_loss_stops_and_no_saved_state_gives_one(tmp_path):
    script = (
        _LOOP_PRELUDE
        + f"""
cfg = tiny_config()
cfg.total_steps = 8
cfg.checkpoint_every = 1
cfg.gen_optim.lr = 1e30  # every weight jumps by ~1e30 on the first update
try:
    train.train_and_evaluate(cfg, "{tmp_path}/w")
    message = ""
except train.NonFiniteLossError as e:
    message = str(e)
print(json.dumps({{"message": message, "saved": sorted(os.listdir("{tmp_path}/w/checkpoints"))}}))
"""
    )
    out = _run(script)
    # Step 1's losses (from the initial state) are finite, but the state it made gives
    # non-finite ones: it is not saved.
    assert "non-finite" in out["message"] and "from the state of step 1" in out["message"], out
    assert out["saved"] == []


def _device_step_script(devices: int, out: str) -> str:
    return (
        _LOOP_PRELUDE
        + f"""
from inpaint_tiny import synthetic_batch
assert jax.device_count() == {devices}, jax.devices()
try:
    train.make_mesh(4)
    error = ""
except ValueError as e:
    error = str(e)
cfg = tiny_config()
cfg.loss.structure = 1.0  # the face mesh's term too: its batch is sharded like the rest
cfg.per_device_batch_size = 8 // jax.device_count()  # the global batch of 8 on either mesh
cfg = train.with_batch_for_devices(cfg, jax.device_count())
assert cfg.global_batch_size == 8, cfg.global_batch_size
trainer = train.Trainer(cfg, train.make_mesh(cfg.global_batch_size))
state = trainer.init(jax.random.key(0))
batch = trainer.global_batch(synthetic_batch(cfg.image_size, cfg.global_batch_size))
state, metrics = trainer.train_step(state, batch, jax.random.key(1), trainer.frozen_params)
for part in ("gen", "disc"):
    leaves = jax.tree.leaves(jax.device_get(getattr(state, part + "_params")))
    np.save("{out}" + part + ".npy", np.concatenate([np.ravel(x) for x in leaves]))
print(json.dumps({{"error": error, **{{k: float(v) for k, v in metrics.items()}}}}))
"""
    )


def test_eight_devices_give_the_same_step_as_one(tmp_path):
    results = {}
    for name, count in (("eight", 8), ("one", 1)):
        env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
        script = _device_step_script(count, str(tmp_path / f"{name}."))
        results[name] = _run(script, env_extra=env)
    # Only the order of the cross-device sums differs, so the results agree to float32 rounding...
    for key in ("gen/loss", "disc/loss", "gen/style", "gen/structure", "gen/grad_norm",
                "disc/grad_norm"):  # fmt: skip
        assert results["eight"][key] == pytest.approx(results["one"][key], rel=1e-5), key
    assert results["one"]["gen/structure"] > 0

    def rel(part):
        a, b = (np.load(tmp_path / f"{name}.{part}.npy") for name in ("eight", "one"))
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    assert rel("gen") < 1e-6
    # ...except where a gradient is zero in exact arithmetic: the discriminators' logit weights
    # on features that are equal for real and composite (far from the hole) get rounding noise
    # of ~1e-9, which Adam's first step turns into a sizeable fraction of lr.
    assert rel("disc") < 5e-4
    # A global batch that does not divide by the device count is refused with a clear message.
    assert (
        "global_batch_size=4 must divide by the number of devices (8" in results["eight"]["error"]
    )
    assert results["one"]["error"] == ""


def test_a_per_device_batch_sets_the_global_one_and_nothing_else():
    config = tiny_config()
    assert train.with_batch_for_devices(config, 8) is config  # per_device_batch_size unset: 0
    config.per_device_batch_size = 3
    resolved = train.with_batch_for_devices(config, 8)
    assert resolved.global_batch_size == 24 and config.global_batch_size == 2
    config.per_device_batch_size = -1
    with pytest.raises(ValueError, match=r"config\.per_device_batch_size must be >= 0"):
        train.with_batch_for_devices(config, 8)


def test_config_typo_fails_loudly(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "launch/train.py",
            "--config=configs/demo.py",
            f"--workdir={tmp_path}",
            "--config.gen.widthz=3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "widthz" in proc.stderr
    assert not os.listdir(tmp_path)


def test_event_files_round_trip(tmp_path):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    writer = EventWriter(tmp_path)
    writer.scalars(3, {"gen/loss": 1.5, "disc/loss": -2.25})
    writer.scalars(7, {"gen/loss": 0.5})
    writer.close()
    assert read_scalars(writer.path) == {
        "gen/loss": [(3, 1.5), (7, 0.5)],
        "disc/loss": [(3, -2.25)],
    }


_SIGKILL_CONFIG = """
cfg = tiny_config()
cfg.total_steps = 6
cfg.checkpoint_every = 1
"""


def _kill_at_checkpoint(workdir, step: int, timeout: float = 240) -> int:
    """Trains in a subprocess and SIGKILLs it the moment checkpoint `step` shows up, most likely
    while Orbax is still writing it; returns the process's exit status."""
    script = _LOOP_PRELUDE + _SIGKILL_CONFIG + f'train.train_and_evaluate(cfg, "{workdir}")\n'
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env)
    checkpoints, deadline = workdir / "checkpoints", time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            names = os.listdir(checkpoints) if checkpoints.is_dir() else []
            if any(n.split(".")[0] == str(step) for n in names):  # "3" or "3.orbax-...-tmp-..."
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
    return proc.wait()


def test_sigkill_and_restart_end_in_the_uninterrupted_state(tmp_path):
    assert _kill_at_checkpoint(tmp_path / "killed", step=3) == -signal.SIGKILL
    script = (
        _LOOP_PRELUDE
        + _SIGKILL_CONFIG
        + f"""
resumed = train.train_and_evaluate(cfg, "{tmp_path}/killed")
straight = train.train_and_evaluate(cfg, "{tmp_path}/straight")
a = jax.tree_util.tree_leaves_with_path(jax.device_get(resumed))
b = jax.tree_util.tree_leaves_with_path(jax.device_get(straight))
print(json.dumps({{
    "leaves": len(a),
    "differ": [jax.tree_util.keystr(p) for (p, x), (_, y) in zip(a, b) if not np.array_equal(x, y)],
    "step": int(resumed.step),
}}))
"""
    )
    out = _run(script)
    assert out["step"] == 6 and out["leaves"] > 10
    assert out["differ"] == []  # every leaf bit-identical: the kill cost work, not the result
