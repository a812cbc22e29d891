"""A trained generator, loaded from a training workdir, as a plain function on uint8 images.

`launch/train.py` writes `<workdir>/config.json` next to the checkpoints, so a workdir alone is
enough to rebuild the model: `Inpainter.from_workdir("runs/demo")`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from data_pipeline import atomic
from data_pipeline.images import to_uint8
from jaxinpaint.backends import compiler_options
from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.gan import InpaintingGAN

CONFIG_FILE = "config.json"
# The fields that shape the parameters: a checkpoint restores only into a config agreeing on them.
MODEL_FIELDS = ("image_size", "gen", "disc")


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Writes the run's config as JSON into the workdir (atomically); returns the path."""
    path = os.path.join(workdir, CONFIG_FILE)
    atomic.write_text(path, config.to_json_best_effort(indent=2, sort_keys=True))
    return path


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir was trained with."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: --inpainter must be a workdir written by launch/train.py"
        )
    try:
        with open(path) as f:
            fields = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a valid config JSON file: {e}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"{path} holds a JSON {type(fields).__name__}; expected a config object")
    return ml_collections.ConfigDict(fields)


def model_differences(
    saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict
) -> list[str]:
    """`"field: saved -> new"` for every model field (MODEL_FIELDS) on which two configs differ."""

    def flat(node, prefix=""):
        if isinstance(node, dict):
            return {k: v for key in node for k, v in flat(node[key], f"{prefix}{key}.").items()}
        return {prefix[:-1]: node}

    def model_fields(c):  # through JSON, as config.json holds them: tuples become lists
        as_json = json.loads(c.to_json_best_effort())
        return flat({field: as_json.get(field) for field in MODEL_FIELDS})

    old, new = model_fields(saved), model_fields(config)
    return [
        f"{key}: {old.get(key)} -> {new.get(key)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def float32_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` computing in float32: inference and exports do, whatever the training
    computed in (`config.compute_dtype`); the parameters are float32 either way."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.compute_dtype = "float32"
    return config


class Inpainter:
    """`Inpainter(config, gen_params)(face_RxRx3_uint8, hole_RxR) -> face_RxRx3_uint8`."""

    def __init__(self, config: ml_collections.ConfigDict, gen_params: Any):
        self.config = config
        self.size = int(config.image_size)
        # The smooth fill the generator corrects ("none": it paints the hole itself), for
        # Reconstructor's full-resolution base.
        self.coarse_fill = str(config.gen.get("coarse_fill", "none"))
        self.gen_params = gen_params
        self._generate = jax.jit(
            InpaintingGAN(float32_config(config)).generate, compiler_options=compiler_options()
        )

    @classmethod
    def from_workdir(
        cls, workdir: str, step: int | None = None, checkpoint: str = "auto"
    ) -> Inpainter:
        """The generator of a workdir's checkpoint: `checkpoint` "best" (by validation, see
        jaxinpaint/validation.py), "latest", or "auto" (best when there is one); `step` picks a
        step among the latest checkpoints."""
        if checkpoint not in ("auto", "best", "latest"):
            raise ValueError(f"checkpoint must be auto, best or latest, got {checkpoint!r}")
        best_dir = os.path.join(workdir, "best")
        if checkpoint == "auto":
            has_best = os.path.isfile(os.path.join(best_dir, "best.json")) and step is None
            checkpoint = "best" if has_best else "latest"
        folder = best_dir if checkpoint == "best" else os.path.join(workdir, "checkpoints")
        config = load_config(workdir)
        if not os.path.isdir(folder):  # before Orbax, which would create it
            raise FileNotFoundError(f"no checkpoint in {folder}: train in {workdir} first")
        try:
            gan = InpaintingGAN(config)
            device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            generator = jax.tree.map(  # shapes only: nothing is initialised
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                jax.eval_shape(gan.init, jax.random.key(0)).gen_ema,
            )
        except (AttributeError, KeyError) as e:  # a hand-edited or foreign config.json
            raise ValueError(
                f"{os.path.join(workdir, CONFIG_FILE)} lacks a field the model needs "
                f"({type(e).__name__}: {e}); expected the config launch/train.py writes"
            ) from None
        ckpt = Checkpointer(folder, keep=config.keep_checkpoints)
        try:  # the generator's averaged weights alone, not the whole training state
            gen_ema = ckpt.restore_field("gen_ema", generator, step)  # FileNotFoundError if none
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as e:
            raise ValueError(f"could not read the checkpoint in {workdir}: {e}") from None
        finally:
            ckpt.close()
        return cls(config, gen_ema)

    def inpaint_batch(
        self, occluded_BxRxRx3: np.ndarray, hole_BxRxRx1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(pred, composite)` as float32 in [0, 1] for uint8 images and 0/1 holes."""
        batch = {
            "occluded": jnp.asarray(occluded_BxRxRx3, jnp.uint8),
            "original": jnp.asarray(occluded_BxRxRx3, jnp.uint8),  # unused by the generator
            "mask": jnp.asarray(hole_BxRxRx1, jnp.uint8),
        }
        pred, composite = self._generate(self.gen_params, batch)
        return np.asarray(pred), np.asarray(composite)

    def __call__(self, face_RxRx3: np.ndarray, hole_RxR: np.ndarray) -> np.ndarray:
        if face_RxRx3.shape != (self.size, self.size, 3):
            raise ValueError(
                f"the inpainter works at {self.size}x{self.size}x3, got {face_RxRx3.shape}"
            )
        hole = np.asarray(hole_RxR).reshape(1, self.size, self.size, 1) > 0
        _, composite = self.inpaint_batch(face_RxRx3[None], hole.astype(np.uint8))
        return to_uint8(composite[0])
