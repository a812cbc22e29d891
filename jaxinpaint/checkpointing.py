"""Orbax checkpoints of the train state and the input position, in `<workdir>/checkpoints`."""

from __future__ import annotations

import os

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
        target = jax.tree.map(
            lambda x: (
                x
                if isinstance(x, jax.ShapeDtypeStruct)
                else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
            ),
            like,
        )
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
                ),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"checkpoint {self.directory}/{step} does not match this config's model "
                f"(different widths or levels, or written by an older version?): {_mismatch(e)}"
            ) from None
        return restored["state"], dict(restored["meta"])

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


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
