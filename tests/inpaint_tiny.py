"""Shared helpers for the inpainter tests: config loading, a tiny config, a synthetic batch."""

from __future__ import annotations

import numpy as np
from config_files import REPO, load_config

from jaxinpaint.input_pipeline import synthetic_example

__all__ = ["REPO", "load_config", "synthetic_batch", "tiny_config"]


def tiny_config():
    """The demo config shrunk to 32×32 and a few channels: compiles and runs in seconds."""
    c = load_config("demo")
    c.image_size = 32
    c.global_batch_size = 2
    c.total_steps = 4
    c.data.source = "synthetic"
    # The seed's generator and losses (the golden values were taken with them), not the demo's
    # recipe; tests of the coarse fill set it themselves.
    full = load_config("full")
    c.gen.coarse_fill = full.gen.coarse_fill
    c.loss = full.loss
    c.data.augment = full.data.augment
    c.gen_optim.ema = full.gen_optim.ema  # off: test_train.py tests the average itself
    c.gen_optim.lr = 5e-4  # the golden values' (and the overfitting test's) step size
    c.gen.widths = (4, 8, 8)
    c.gen.partial_widths = (4, 4, 8)
    c.gen.partial_kernels = (5, 3, 3)
    c.gen.atrous_width = 8
    c.gen.atrous_rates = (2,)
    c.disc.global_widths = (4, 8)
    c.disc.local_widths = (4,)
    c.disc.local_size = 16
    c.log_every = 2
    c.sample_every = 2
    c.checkpoint_every = 2
    c.num_samples = 2
    c.eval_every = 0  # validation has its own test (test_train.py)
    return c


def synthetic_batch(size: int, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    items = [synthetic_example(seed, i, size) for i in range(batch)]
    return {k: np.stack([it[k] for it in items]) for k in ("occluded", "original", "mask")}
