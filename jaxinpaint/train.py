"""Training loop: `train_and_evaluate(config, workdir)`.

A 1-D `("data",)` mesh spans every device of every process; the train state is replicated and
each global batch is sharded along its first axis, assembled from the per-process shares with
`jax.make_array_from_process_local_data`. Writes into `workdir`:

    config.json           the run's config (jaxinpaint.inference rebuilds the model from it)
    checkpoints/<step>/   Orbax: train state + {"step", "data_position"}
    best/<step>/, best/best.json   the state with the best validation `config.best_metric` so far
    train_faces.json      the face ids and persons training draws from (launch/evaluate.py checks)
    events.out.tfevents.* TensorBoard scalars (process 0)
    samples/step_<N>.png  occluded | mask | output | composite | ground truth (process 0)
    curves.png            loss curves drawn from the event files at the end (process 0)
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from data_pipeline import splits
from jaxinpaint import backends, curves, inference, input_pipeline, samples, validation
from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.event_writer import EventWriter
from jaxinpaint.gan import FAST_COMPILE, InpaintingGAN, TrainState


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; the run stops without saving the bad state."""


class _Preemption:
    """Turns SIGTERM into a stop that every process takes at the same step (then saves).

    One process: a Python SIGTERM handler sets a flag the loop checks after each step. Several
    processes: JAX's preemption service (started by `jax.distributed.initialize`) catches the
    signal on any host and agrees on the step at which all of them stop; a Python handler here
    would replace the service's and let one host stop alone, so none is installed.
    """

    def __init__(self):
        self._requested = False
        self._previous = None
        self._multi_process = jax.process_count() > 1

    def stop_at(self, step: int) -> bool:
        """True when training must stop (and save) after `step`; call it on every step."""
        if self._multi_process:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._requested

    def __enter__(self):
        if self._multi_process:
            return self
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, the loop just runs
            self._previous = None
        return self

    def _handle(self, signum, frame):
        del signum, frame
        self._requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def with_batch_for_devices(config, device_count: int):
    """`config`, or when `config.per_device_batch_size` is set (> 0) a copy whose global batch is
    that many per device: the same config then runs on any number of devices."""
    per_device = config.get("per_device_batch_size", 0)
    if per_device < 0:
        raise ValueError(f"config.per_device_batch_size must be >= 0 (0: unset), got {per_device}")
    if not per_device:
        return config
    config = config.copy_and_resolve_references()
    config.global_batch_size = per_device * device_count
    logging.info(
        "Global batch %d: config.per_device_batch_size=%d on %d devices.",
        config.global_batch_size, per_device, device_count,
    )  # fmt: skip
    return config


def make_mesh(global_batch_size: int) -> Mesh:
    """A 1-D `data` mesh over all devices; the global batch must divide by their count."""
    devices = jax.devices()
    if global_batch_size % len(devices):
        raise ValueError(
            f"config.global_batch_size={global_batch_size} must divide by the number of devices "
            f"({len(devices)} {devices[0].platform} devices); pick a multiple of {len(devices)}"
        )
    return Mesh(np.asarray(devices), ("data",))


class Trainer:
    """Jitted, sharded init / train step / generate for one config on one mesh.

    The step and generate compile with `compiler_options`, by default the mesh's platform's
    (`jaxinpaint.backends.compiler_options`); `{}` compiles with XLA's defaults.
    """

    def __init__(self, config, mesh: Mesh, compiler_options: dict | None = None):
        self.config = config
        self.mesh = mesh
        platform = backends.platform_of(mesh)
        self.gan = InpaintingGAN(config, platform)
        if compiler_options is None:
            compiler_options = backends.compiler_options(platform)
        self.compiler_options = compiler_options
        self.replicated = NamedSharding(mesh, P())
        self.batch_sharding = NamedSharding(mesh, P("data"))
        abstract = jax.eval_shape(self.gan.init, jax.random.key(0))
        self.state_sharding = jax.tree.map(lambda _: self.replicated, abstract)
        self.abstract_state = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated), abstract
        )
        # Initialisation runs once: compiling it without XLA's optimisations saves ~4x compile time.
        self.init = jax.jit(
            self.gan.init,
            out_shardings=self.state_sharding,
            compiler_options=FAST_COMPILE,
        )
        self.train_step = jax.jit(
            self.gan.train_step,
            in_shardings=(
                self.state_sharding,
                self.batch_sharding,
                self.replicated,
                self.replicated,
            ),
            out_shardings=(self.state_sharding, self.replicated),
            donate_argnums=(0,),
            compiler_options=compiler_options,
        )
        self.generate = jax.jit(
            self.gan.generate, out_shardings=self.replicated, compiler_options=compiler_options
        )
        # The fixed networks the losses read (VGG16, the face mesh), replicated; each None when
        # no loss term reads it.
        self.frozen_params = jax.device_put(self.gan.frozen_params(), self.replicated)

    def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """This process's share → one global array per key, sharded over `data`."""
        return {
            k: jax.make_array_from_process_local_data(self.batch_sharding, v)
            for k, v in local.items()
        }


def _check_finite(
    step: int, metrics: dict[str, float], last_good: int | None, whose: str = "at step"
) -> None:
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        where = f"step {last_good}" if last_good is not None else "none written"
        raise NonFiniteLossError(
            f"non-finite {', '.join(bad)} {whose} {step}; stopped without saving "
            f"(last good checkpoint: {where})"
        )


def _check_saveable(trainer, state, batch, rng, step: int, last_good: int | None) -> None:
    """The state about to be saved must itself give finite losses: one more step on a copy of
    it (thrown away; the train step's own executable, so nothing compiles again)."""
    probe = jax.tree.map(lambda x: x.copy(), state)  # the step donates its input
    _, metrics = trainer.train_step(probe, batch, rng, trainer.frozen_params)
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    _check_finite(step, host, last_good, whose="from the state of step")


def _check_same_model(config, workdir: str) -> None:
    """A resume must build the model its checkpoints hold; names the fields that differ."""
    try:
        saved = inference.load_config(workdir)
    except FileNotFoundError:
        return  # checkpoints without a config (written by hand): restoring will tell
    differences = inference.model_differences(saved, config)
    if differences:
        raise ValueError(
            f"{workdir} holds checkpoints of another model than this config builds "
            f"({'; '.join(differences)}): resume with the config it was trained with, or use "
            "a new --workdir"
        )


def _restore_or_init(trainer: Trainer, ckpt: Checkpointer, rng: jax.Array) -> tuple[Any, int]:
    # Resume order: the workdir's latest checkpoint → config.init_from (params only) → scratch.
    config = trainer.config
    if ckpt.latest_step() is not None:
        state, meta = ckpt.restore(trainer.abstract_state)
        logging.info("Resumed from %s at step %d.", ckpt.directory, meta["step"])
        return state, int(meta["data_position"])
    state = trainer.init(rng)
    if config.init_from:
        source = Checkpointer(config.init_from, keep=1)
        if source.latest_step() is None:
            raise FileNotFoundError(f"config.init_from={config.init_from!r} has no checkpoint")
        loaded, _ = source.restore(trainer.abstract_state)
        source.close()
        state = state.replace(
            gen_params=loaded.gen_params, disc_params=loaded.disc_params, gen_ema=loaded.gen_ema
        )
        logging.info("Initialised parameters from %s.", config.init_from)
    return state, 0


def _write_samples(trainer: Trainer, state: TrainState, fixed: dict, workdir: str) -> str | None:
    """Every process runs the generator (it spans the global mesh); process 0 writes the PNG."""
    batch = jax.device_put(fixed, trainer.replicated)
    pred, composite = jax.device_get(trainer.generate(state.gen_ema, batch))
    if jax.process_index() != 0:
        return None
    grid = samples.make_grid(fixed["occluded"], fixed["mask"], pred, composite, fixed["original"])
    path = os.path.join(workdir, "samples", f"step_{int(jax.device_get(state.step)):07d}.png")
    samples.write_image(path, grid)
    return path


def _progress_bar(step: int, total: int, enabled: bool) -> tqdm:
    """Steps done, rate and time left on stderr (process 0 only); in a log file rather than a
    terminal (SLURM, nohup) a line a minute, not one per redraw."""
    return tqdm(
        total=total,
        initial=step,
        desc="train",
        unit="step",
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=1.0 if sys.stderr.isatty() else 60.0,
    )


class _StepMetrics:
    """The train step's metrics, read one step late (the host reads step N's while step N+1 runs),
    checked to be finite, averaged over each logging window and written by process 0."""

    def __init__(self, config, workdir: str, progress: tqdm, last_good: int | None):
        self.batch_size = config.global_batch_size
        self.progress = progress
        self.writer = EventWriter(workdir) if jax.process_index() == 0 else None
        self.last_good = last_good  # the newest checkpoint: a non-finite loss error names it
        self._pending: tuple[int, Any] | None = None  # a dispatched step's metrics, not yet read
        self._window: list[dict[str, float]] = []
        self._window_start = time.perf_counter()

    def dispatched(self, step: int, metrics: Any) -> None:
        """Reads the previous step's metrics (this step runs meanwhile), then holds this one's."""
        self.read()
        self._pending = (step, metrics)

    def read(self) -> None:
        """Waits for the held metrics and checks them: before a state is judged or saved."""
        if self._pending is not None:
            step, metrics = self._pending
            self._pending = None
            host = {k: float(v) for k, v in jax.device_get(metrics).items()}
            _check_finite(step, host, self.last_good)
            self._window.append(host)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if self.writer is not None:
            self.writer.scalars(step, scalars)

    def log(self, step: int) -> None:
        """Writes and shows the window's means, then starts a new window."""
        self.read()
        window = self._window
        steps_per_s = len(window) / max(time.perf_counter() - self._window_start, 1e-9)
        mean = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
        mean["perf/steps_per_s"] = steps_per_s
        mean["perf/images_per_s"] = steps_per_s * self.batch_size
        self.write(step, mean)
        if self.writer is not None:
            self.progress.set_postfix(
                {"gen/loss": f"{mean['gen/loss']:.3f}", "psnr": f"{mean['gen/psnr']:.2f}"},
                refresh=False,  # shown at the bar's next redraw (mininterval)
            )
            logging.info(
                "step %d  gen/loss %.4f  gen/l1_hole %.4f  gen/psnr %.2f  disc/loss %.4f  "
                "%.2f steps/s",
                step, mean["gen/loss"], mean["gen/l1_hole"], mean["gen/psnr"],
                mean["disc/loss"], steps_per_s,
            )  # fmt: skip
        self._window = []
        self._window_start = time.perf_counter()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Keeper:
    """Saves the state every `checkpoint_every` steps, and into `<workdir>/best` when validation
    (every `eval_every` steps, on `held_out`) beats the best so far. A state is judged or saved
    only once its step's losses were read, and saved only if one probe step from it is finite."""

    def __init__(self, trainer, ckpt, metrics, rng, workdir: str, held_out: dict | None):
        self.trainer, self.ckpt, self.metrics, self.rng = trainer, ckpt, metrics, rng
        self._checked = None  # the last step whose state passed _check_saveable
        self.validator = self.tracker = self.best_ckpt = None
        if held_out is not None:
            chunk = math.gcd(trainer.config.eval_examples, 16)
            self.validator = validation.Validator(trainer, held_out, chunk)
            self.tracker = validation.BestTracker(workdir, trainer.config.best_metric)
            self.best_ckpt = Checkpointer(os.path.join(workdir, validation.BEST_DIR), keep=1)

    def _check(self, state, batch, step: int) -> None:
        self.metrics.read()
        if self._checked != step:
            _check_saveable(self.trainer, state, batch, self.rng, step, self.metrics.last_good)
            self._checked = step

    def validate(self, state, batch, step: int, position: int) -> None:
        self.metrics.read()  # a state is only judged (and kept) once its losses passed
        scores = self.validator(state.gen_ema)
        self.metrics.write(step, scores)
        if jax.process_index() == 0:
            logging.info(
                "step %d  validation: %s", step,
                "  ".join(f"{k} {v:.4f}" for k, v in scores.items()),
            )  # fmt: skip
        value = scores[self.tracker.metric]
        if self.tracker.improves(value):
            self._check(state, batch, step)
            self.best_ckpt.save(state, data_position=position)
            self.best_ckpt.wait()
            if jax.process_index() == 0:
                self.tracker.record(step, value, scores)

    def save(self, state, batch, step: int, position: int) -> None:
        self._check(state, batch, step)
        self.ckpt.save(state, data_position=position)
        self.metrics.last_good = step

    def close(self) -> None:  # `ckpt` is its owner's to close
        if self.best_ckpt is not None:
            self.best_ckpt.close()


def _record_run(config, workdir: str) -> None:
    """The workdir's record of the run (process 0): its config, which lets jaxinpaint.inference
    rebuild the model from the workdir alone, and the faces it trains on, which
    launch/evaluate.py checks evaluation splits against."""
    if jax.process_index() != 0:
        return
    inference.save_config(config, workdir)
    trained_on = input_pipeline.training_faces(config)
    if trained_on is not None:
        splits.write_record(workdir, config.data.source, trained_on)


def _due(step: int, every: int, stop: bool) -> bool:
    return step % every == 0 or stop


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains `config` in `workdir` up to `config.total_steps`, resuming if it can."""
    workdir = os.path.abspath(workdir)
    config = with_batch_for_devices(config, jax.device_count())
    input_pipeline.validate(config)
    trainer = Trainer(config, make_mesh(config.global_batch_size))
    with contextlib.ExitStack() as cleanup:  # closes what was opened, however the run ends
        # First in, last out: a SIGTERM while the last checkpoint is written cannot cut it short.
        preemption = cleanup.enter_context(_Preemption())
        ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
        cleanup.callback(ckpt.close)
        if ckpt.latest_step() is not None:
            _check_same_model(config, workdir)
        init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
        state, position = _restore_or_init(trainer, ckpt, init_rng)
        _record_run(config, workdir)  # only now, with a state that fits the config
        step, total = int(jax.device_get(state.step)), config.total_steps
        if step >= total:
            logging.info("Already at step %d >= total_steps=%d; nothing to do.", step, total)
            return state

        data = input_pipeline.InputPipeline(
            config,
            start_step=position,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        # Validation faces (never trained on), the same on every process; the sample grid shows
        # the first few of them.
        eval_examples = config.get("eval_examples", 0) if config.get("eval_every", 0) else 0
        held_out = input_pipeline.fixed_examples(config, max(config.num_samples, eval_examples))
        fixed = {k: v[: config.num_samples] for k, v in held_out.items()}
        validated = {k: v[:eval_examples] for k, v in held_out.items()} if eval_examples else None
        progress = cleanup.enter_context(
            _progress_bar(step, total, enabled=jax.process_index() == 0)
        )
        metrics = _StepMetrics(config, workdir, progress, last_good=ckpt.latest_step())
        cleanup.callback(metrics.close)
        keeper = _Keeper(trainer, ckpt, metrics, train_rng, workdir, validated)
        cleanup.callback(keeper.close)
        logging.info(
            "Training from step %d to %d on %d devices (global batch %d).",
            step, total, jax.device_count(), config.global_batch_size,
        )  # fmt: skip
        while step < total:
            batch = trainer.global_batch(next(data))
            state, step_metrics = trainer.train_step(state, batch, train_rng, trainer.frozen_params)
            step += 1
            position += 1
            progress.update()
            metrics.dispatched(step, step_metrics)
            preempted = preemption.stop_at(step)
            stop = preempted or step == total
            if step == 1 and jax.process_index() == 0:
                logging.info("First step done (includes compilation).")
            if _due(step, config.log_every, stop):
                metrics.log(step)
            if _due(step, config.sample_every, stop):
                path = _write_samples(trainer, state, fixed, workdir)
                if path:
                    logging.info("Wrote %s", path)
            if keeper.validator is not None and _due(step, config.eval_every, stop):
                keeper.validate(state, batch, step, position)
            if _due(step, config.checkpoint_every, stop):
                keeper.save(state, batch, step, position)
            if preempted:
                logging.warning("SIGTERM: saved step %d; stopping.", step)
                break
    if jax.process_index() == 0:
        logging.info("Loss curves: %s", curves.plot(workdir))
    return state
