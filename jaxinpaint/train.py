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
from jaxinpaint.vgg import load_vgg16_params


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
    """Jitted, sharded init / train step / generate for one config on one mesh."""

    def __init__(self, config, mesh: Mesh):
        self.config = config
        self.mesh = mesh
        platform = backends.platform_of(mesh)
        self.gan = InpaintingGAN(config, platform)
        options = backends.compiler_options(platform)
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
            compiler_options=options,
        )
        self.generate = jax.jit(
            self.gan.generate, out_shardings=self.replicated, compiler_options=options
        )
        self.vgg_params = None  # no loss term reads VGG features: not loaded, not run
        if self.gan.uses_vgg:
            self.vgg_params = jax.device_put(
                load_vgg16_params(config.loss.vgg_weights or None), self.replicated
            )

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
    _, metrics = trainer.train_step(probe, batch, rng, trainer.vgg_params)
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


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains `config` in `workdir` up to `config.total_steps`, resuming if it can."""
    workdir = os.path.abspath(workdir)
    input_pipeline.validate(config)
    mesh = make_mesh(config.global_batch_size)
    trainer = Trainer(config, mesh)
    is_lead = jax.process_index() == 0
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
    if ckpt.latest_step() is not None:
        _check_same_model(config, workdir)
    root_rng = jax.random.key(config.seed)
    init_rng, train_rng = jax.random.split(root_rng)
    state, position = _restore_or_init(trainer, ckpt, init_rng)
    # Only now, with a state that fits the config: the workdir's record of the run.
    if is_lead:  # lets jaxinpaint.inference rebuild the model from the workdir alone
        inference.save_config(config, workdir)
        trained_on = input_pipeline.training_faces(config)
        if trained_on is not None:  # launch/evaluate.py refuses splits that share a person
            splits.write_record(workdir, config.data.source, trained_on)
    step = int(jax.device_get(state.step))
    total = config.total_steps
    if step >= total:
        logging.info("Already at step %d >= total_steps=%d; nothing to do.", step, total)
        ckpt.close()
        return state

    data = input_pipeline.InputPipeline(
        config,
        start_step=position,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    # Validation faces (never trained on), the same on every process; the sample grid shows the
    # first few of them.
    eval_examples = config.get("eval_examples", 0) if config.get("eval_every", 0) else 0
    held_out = input_pipeline.fixed_examples(config, max(config.num_samples, eval_examples))
    fixed = {k: v[: config.num_samples] for k, v in held_out.items()}
    validator = tracker = best_ckpt = None
    if eval_examples:
        chunk = math.gcd(eval_examples, 16)
        validator = validation.Validator(
            trainer, {k: v[:eval_examples] for k, v in held_out.items()}, chunk
        )
        tracker = validation.BestTracker(workdir, config.best_metric)
        best_ckpt = Checkpointer(os.path.join(workdir, validation.BEST_DIR), keep=1)
    writer = EventWriter(workdir) if is_lead else None
    last_good = ckpt.latest_step()
    pending: tuple[int, dict] | None = None  # metrics of the last dispatched step, not yet read
    checked = None  # the last step whose state gave finite losses (_check_saveable)
    window: list[dict[str, float]] = []
    window_start = time.perf_counter()

    def read_pending() -> None:
        nonlocal pending
        if pending is not None:
            at, metrics = pending
            pending = None
            host = {k: float(v) for k, v in jax.device_get(metrics).items()}
            _check_finite(at, host, last_good)
            window.append(host)

    logging.info(
        "Training from step %d to %d on %d devices (global batch %d).",
        step, total, jax.device_count(), config.global_batch_size,
    )  # fmt: skip
    progress = _progress_bar(step, total, enabled=is_lead)
    with _Preemption() as preemption:
        try:
            while step < total:
                batch = trainer.global_batch(next(data))
                state, metrics = trainer.train_step(state, batch, train_rng, trainer.vgg_params)
                step += 1
                position += 1
                progress.update()
                # Read the previous step's metrics while this one runs.
                read_pending()
                pending = (step, metrics)
                preempted = preemption.stop_at(step)
                stop = preempted or step == total
                if step == 1 and is_lead:
                    logging.info("First step done (includes compilation).")
                if step % config.log_every == 0 or stop:
                    read_pending()
                    elapsed = time.perf_counter() - window_start
                    mean = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
                    mean["perf/steps_per_s"] = len(window) / max(elapsed, 1e-9)
                    mean["perf/images_per_s"] = mean["perf/steps_per_s"] * config.global_batch_size
                    if is_lead:
                        writer.scalars(step, mean)
                        progress.set_postfix(
                            {
                                "gen/loss": f"{mean['gen/loss']:.3f}",
                                "psnr": f"{mean['gen/psnr']:.2f}",
                            },
                            refresh=False,  # shown at the bar's next redraw (mininterval)
                        )
                        logging.info(
                            "step %d  gen/loss %.4f  gen/l1_hole %.4f  gen/psnr %.2f  "
                            "disc/loss %.4f  %.2f steps/s",
                            step, mean["gen/loss"], mean["gen/l1_hole"], mean["gen/psnr"],
                            mean["disc/loss"], mean["perf/steps_per_s"],
                        )  # fmt: skip
                    window.clear()
                    window_start = time.perf_counter()
                if step % config.sample_every == 0 or stop:
                    path = _write_samples(trainer, state, fixed, workdir)
                    if path:
                        logging.info("Wrote %s", path)
                if validator is not None and (step % config.eval_every == 0 or stop):
                    read_pending()  # a state is only judged (and kept) once its losses passed
                    scores = validator(state.gen_ema)
                    if is_lead:
                        writer.scalars(step, scores)
                        logging.info(
                            "step %d  validation: %s", step,
                            "  ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                        )  # fmt: skip
                    value = scores[tracker.metric]
                    if tracker.improves(value):
                        _check_saveable(trainer, state, batch, train_rng, step, last_good)
                        checked = step
                        best_ckpt.save(state, data_position=position)
                        best_ckpt.wait()
                        if is_lead:
                            tracker.record(step, value, scores)
                if step % config.checkpoint_every == 0 or stop:
                    read_pending()  # never save a state whose losses were not checked
                    if checked != step:
                        _check_saveable(trainer, state, batch, train_rng, step, last_good)
                        checked = step
                    ckpt.save(state, data_position=position)
                    last_good = step
                if preempted:
                    logging.warning("SIGTERM: saved step %d; stopping.", step)
                    break
        finally:
            progress.close()
            ckpt.close()
            if best_ckpt is not None:
                best_ckpt.close()
            if writer is not None:
                writer.close()
    if is_lead:
        logging.info("Loss curves: %s", curves.plot(workdir))
    return state
