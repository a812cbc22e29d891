"""What the bench scripts share. They run as `python bench/<name>.py`, which puts this folder
first on `sys.path`, so they import this module as `bench_common`."""

from __future__ import annotations

import importlib.util
import json
import statistics
import time
from pathlib import Path

import configs
from data_pipeline import atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def load_config(path: str | Path):
    """`get_config()` of a config file given by path (a `--config` flag: the repository's
    configs/*.py or a user's own; by name, `configs.get`)."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"error: config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"_bench_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def untrained_detector(size: int | None = None, device: str = "cpu"):
    """The demo's CPU detector (configs/detector_demo.py), untrained and seeded, with a score
    threshold of 0 so that the mask head runs on every detection: the slow end of what a trained
    model costs. Its input side is `size` (None: the config's, which every image is resized to).
    """
    import torch

    from detector import model, predict

    config = configs.get("detector_demo")
    torch.manual_seed(0)
    size = size or config.model.image_size
    return predict.Detector(model.build_model(config.model, size), score_thresh=0.0, device=device)


def write_json(path: str | Path, result: dict) -> None:
    """Writes `result` as indented JSON through a temporary file, then says where."""
    atomic.write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def timed(fn, repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of `repeats` calls of `fn()`, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def timed_alternating(fns: dict, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median milliseconds of each `fn()` of `fns`, their calls alternating (one of each, then
    again, `repeats` times), so that a busy machine slows them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}
