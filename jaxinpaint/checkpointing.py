"""Orbax checkpoints of the train state and the input position, in `<workdir>/checkpoints`."""

from __future__ import annotations

import inspect
import os
import re
import sys

import jax
import orbax.checkpoint as ocp

from jaxinpaint.gan import TrainState


class Checkpointer:
    """Saves `(state, {"step", "data_position"})`; restores the latest or a given step."""

    def __init__(self, directory: str | os.PathLike, *, keep: int):
        self.directory = os.path.abspath(os.fspath(directory))
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, state: TrainState, *, data_position: int) -> None:
        """Starts an (asynchronous) save at `state.step`; call `wait()` before exiting."""
        step = int(jax.device_get(state.step))
        meta = {"step": step, "data_position": int(data_position)}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def restore(self, like: TrainState, step: int | None = None) -> tuple[TrainState, dict]:
        """State shaped and sharded like `like` (arrays or ShapeDtypeStructs), and its metadata."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        target = _abstract(like)
        restored = _read(
            f"{self.directory}/{step}",
            lambda: self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
                ),
            ),
        )
        return restored["state"], dict(restored["meta"])

    def restore_field(self, name: str, like, step: int | None = None):
        """One field of a saved state (`gen_ema`: the generator, for inference), read alone:
        Orbax's partial restore reads none of the other arrays (the discriminators and the Adam
        moments: about 4/5 of the full model's checkpoint). `like` is that field's tree of
        arrays or `jax.ShapeDtypeStruct`s (with shardings)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        target = {name: _abstract(like)}
        restore_args = jax.tree.map(
            lambda x: ocp.ArrayRestoreArgs(
                sharding=x.sharding, global_shape=x.shape, dtype=x.dtype
            ),
            target,
        )
        args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True)

        def read():
            with ocp.PyTreeCheckpointer() as checkpointer:
                return checkpointer.restore(
                    os.path.join(self.directory, str(step), "state"), args=args
                )

        restored = _read(f"{self.directory}/{step}", read)[name]
        # A partial restore hands back the request itself for what the checkpoint lacks.
        missing = [
            jax.tree_util.keystr(path)
            for path, leaf in jax.tree_util.tree_leaves_with_path(restored)
            if isinstance(leaf, jax.ShapeDtypeStruct)
        ]
        if missing:
            raise ValueError(
                f"checkpoint {self.directory}/{step} has no {name}{missing[0]} "
                f"({len(missing)} arrays missing): written by an older version or another model?"
            )
        return restored

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _abstract(like):
    """`like` as `jax.ShapeDtypeStruct`s, keeping each array's sharding."""
    return jax.tree.map(
        lambda x: (
            x
            if isinstance(x, jax.ShapeDtypeStruct)
            else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        ),
        like,
    )


def _read(where: str, read):
    """`read()`, an Orbax restore of the checkpoint at `where`, with its failures as one
    ValueError that says whether the files are damaged or hold another model."""
    _quiet_abandoned_reads()  # before: the dropped reads may report while the error unwinds
    try:
        return read()
    except (ValueError, KeyError, TypeError) as e:
        error = _mismatch_or_corrupt(e, where)
    except Exception as e:  # Orbax raises a bare Exception for unreadable array data
        error = _corrupt(e, where)
    raise error


def _quiet_abandoned_reads() -> None:
    """Orbax reads the arrays in concurrent coroutines; when one fails (a corrupt file, another
    shape) the others are dropped unfinished and their reads still in flight call back into an
    event loop that is closed. Python prints a traceback for each (sys.unraisablehook): noise
    after the one error reported. From the first restore on, those two kinds are dropped; every
    other unraisable error is printed as before."""
    previous = sys.unraisablehook
    if getattr(previous, "_drops_abandoned_reads", False):
        return

    def hook(unraisable):
        closed_loop = isinstance(unraisable.exc_value, RuntimeError) and (
            str(unraisable.exc_value) == "Event loop is closed"
        )
        if not (closed_loop or inspect.iscoroutine(unraisable.object)):
            previous(unraisable)

    hook._drops_abandoned_reads = True
    sys.unraisablehook = hook


def _corrupt(error: Exception, where: str) -> ValueError:
    first = next((ln for ln in str(error).splitlines() if ln.strip()), type(error).__name__)
    return ValueError(
        f"checkpoint {where} cannot be read (a truncated or corrupt file?): {first[:300]}"
    )


def _mismatch_or_corrupt(error: Exception, where: str) -> ValueError:
    """TensorStore's read errors start with a status code (DATA_LOSS: ..., OUT_OF_RANGE: ...)
    and metadata that is no text cannot be decoded: the files are damaged; Orbax's own errors
    mean another tree or other shapes."""
    if isinstance(error, UnicodeDecodeError) or re.match(r"[A-Z][A-Z_]+: ", str(error)):
        return _corrupt(error, where)
    return ValueError(
        f"checkpoint {where} does not match this config's model "
        f"(different widths or levels, or written by an older version?): {_mismatch(error)}"
    )


def _mismatch(error: Exception, limit: int = 400) -> str:
    """Orbax's structure mismatch in a line: the paths that differ and which side lacks them
    (its own message prints both whole trees: thousands of lines for a real model)."""
    lines = str(error).splitlines()
    found = []
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and line.endswith(":") and i + 2 < len(lines):
            source, target = lines[i + 1].strip(), lines[i + 2].strip()
            if target.endswith("Target: MISSING"):
                found.append(f"{line[:-1]} (not in the checkpoint)")
            elif source.endswith("Source: MISSING"):
                found.append(f"{line[:-1]} (only in the checkpoint)")
            elif source.startswith("- Source:"):
                found.append(f"{line[:-1]} (differs)")
    text = "; ".join(found) if found else " ".join(lines)
    return text if len(text) <= limit else text[:limit] + " ..."
