"""Validation while training: hole PSNR, hole SSIM and LPIPS of the composite on fixed examples
of the validation faces (never trained on), and the best checkpoint by one of them.

`Validator(trainer, examples)(gen_params)` returns `{"val/psnr_hole", "val/ssim_hole",
"val/lpips"}`, means over the examples; `BestTracker` decides whether a result beats the best so
far and remembers it in `<workdir>/best/best.json` next to the best checkpoint.
"""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np

from data_pipeline import atomic
from jaxinpaint.evaluation import metrics
from jaxinpaint.evaluation.lpips import LPIPS

# metric -> True when larger is better
METRICS = {"val/psnr_hole": True, "val/ssim_hole": True, "val/lpips": False}
BEST_DIR = "best"
_BEST_FILE = "best.json"


class Validator:
    """Runs the generator over fixed examples in chunks of `chunk` and scores the composites."""

    def __init__(self, trainer, examples: dict[str, np.ndarray], chunk: int):
        n = len(examples["mask"])
        if n == 0 or n % chunk:
            raise ValueError(f"config.eval_examples={n} must be a positive multiple of {chunk}")
        self._trainer = trainer
        self._chunks = [
            {k: v[i : i + chunk] for k, v in examples.items()} for i in range(0, n, chunk)
        ]
        self._lpips = LPIPS()

    def __call__(self, gen_params) -> dict[str, float]:
        scores = {k: [] for k in METRICS}
        for chunk in self._chunks:
            batch = jax.device_put(chunk, self._trainer.replicated)
            _, composite = self._trainer.generate(gen_params, batch)
            target = chunk["original"].astype(np.float32) / 255.0
            hole = (chunk["mask"] > 0).astype(np.float32)
            scores["val/psnr_hole"].append(metrics.psnr(composite, target, hole))
            scores["val/ssim_hole"].append(metrics.ssim(composite, target, hole))
            scores["val/lpips"].append(self._lpips(composite, target))
        out = {}
        for k, v in scores.items():
            values = np.concatenate([np.asarray(x, np.float64) for x in v])
            values = values[np.isfinite(values)]  # an empty hole has no hole PSNR
            out[k] = float(values.mean()) if values.size else math.nan
        return out


class BestTracker:
    """The best value of one validation metric so far, kept in `<workdir>/best/best.json`."""

    def __init__(self, workdir: str, metric: str):
        if metric not in METRICS:
            raise ValueError(f"config.best_metric must be one of {sorted(METRICS)}, got {metric!r}")
        self.metric = metric
        self.directory = os.path.join(workdir, BEST_DIR)
        self._path = os.path.join(self.directory, _BEST_FILE)
        self.best: dict | None = None
        if os.path.isfile(self._path):
            with open(self._path, encoding="utf-8") as f:
                self.best = json.load(f)

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        previous = self.best["value"]
        return value > previous if METRICS[self.metric] else value < previous

    def record(self, step: int, value: float, scores: dict[str, float]) -> None:
        self.best = {"metric": self.metric, "value": value, "step": step, "scores": scores}
        atomic.write_text(self._path, json.dumps(self.best, indent=1))
