"""Detector checkpoints: plain state dicts plus the config, loaded with `weights_only=True`.

A checkpoint is one `.pt` file holding {"model", "optimizer", "step", "config_json",
"image_size"}: everything needed to resume training or to rebuild the model for prediction,
and nothing that needs pickle's code execution to load.
"""

import json
import pathlib
import re

import ml_collections
import torch

from data_pipeline import atomic

_STEP_FILE = re.compile(r"^ckpt_(\d{8})\.pt$")
FINAL_NAME = "model_final.pt"


def step_path(checkpoint_dir, step: int) -> pathlib.Path:
    """Path of the checkpoint written at `step`."""
    return pathlib.Path(checkpoint_dir) / f"ckpt_{step:08d}.pt"


def save(path, *, model, optimizer, step: int, config, image_size: int) -> None:
    """Write a checkpoint atomically (temp file, then rename), so a crash leaves no half file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "step": int(step),
        "config_json": config.to_json(),
        "image_size": int(image_size),
    }
    with atomic.open_atomic(path, "wb") as f:
        torch.save(state, f)


def load(path, map_location="cpu") -> dict:
    """The checkpoint at `path`; raises ValueError naming the file when it is not one of ours."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected a detector checkpoint (.pt)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: cannot load it as a detector checkpoint ({err})") from err
    missing = {"model", "step", "config_json", "image_size"} - set(state)
    if missing:
        raise ValueError(f"{path}: lacks {sorted(missing)}; expected a checkpoint of this project")
    return state


def config_of(state: dict) -> ml_collections.ConfigDict:
    """The training config stored in a checkpoint."""
    return ml_collections.ConfigDict(json.loads(state["config_json"]))


def latest(checkpoint_dir) -> pathlib.Path | None:
    """The highest-step checkpoint in `checkpoint_dir`, or None."""
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p)
        for p in checkpoint_dir.iterdir()
        if (m := _STEP_FILE.match(p.name)) is not None
    )
    return found[-1][1] if found else None


def prune(checkpoint_dir, keep: int) -> None:
    """Delete all but the `keep` newest step checkpoints."""
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    found = sorted(p for p in checkpoint_dir.iterdir() if _STEP_FILE.match(p.name))
    for path in found[: max(len(found) - keep, 0)]:
        path.unlink()
