"""Validation while training (jaxinpaint/validation.py), the best checkpoint, and the generator's
coarse fill (jaxinpaint/layers/fill.py)."""

import json

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inpaint_tiny import synthetic_batch, tiny_config

from jaxinpaint import train, validation
from jaxinpaint.checkpointing import Checkpointer
from jaxinpaint.gan import InpaintingGAN, prepare_batch
from jaxinpaint.inference import Inpainter
from jaxinpaint.layers.fill import pushpull_fill

pytestmark = pytest.mark.usefixtures("fast_compile")


def test_training_scores_validation_and_keeps_the_best_checkpoint(tmp_path):
    config = tiny_config()
    config.total_steps = 4
    config.eval_every = 2
    config.eval_examples = 4
    config.best_metric = "val/lpips"
    train.train_and_evaluate(config, str(tmp_path))
    best = json.loads((tmp_path / "best" / "best.json").read_text())
    assert best["metric"] == "val/lpips" and best["step"] in (2, 4)
    assert set(best["scores"]) == set(validation.METRICS)
    assert np.isfinite(best["value"]) and best["value"] == best["scores"]["val/lpips"]
    # The best checkpoint is the one Inpainter loads by default; latest is still there.
    best_params = Inpainter.from_workdir(str(tmp_path)).gen_params
    latest_params = Inpainter.from_workdir(str(tmp_path), checkpoint="latest").gen_params
    same = jax.tree.leaves(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), best_params, latest_params)
    )
    assert all(same) == (best["step"] == 4)
    with pytest.raises(ValueError, match="auto, best or latest"):
        Inpainter.from_workdir(str(tmp_path), checkpoint="newest")

    def abstract_state(config):  # shapes and shardings, as training restores them
        return train.Trainer(config, train.make_mesh(config.global_batch_size)).abstract_state

    # Inpainter reads the generator alone: the very arrays of the whole state's gen_ema.
    abstract = abstract_state(config)
    ckpt = Checkpointer(str(tmp_path / "checkpoints"), keep=2)
    state, _ = ckpt.restore(abstract)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, state.gen_ema, latest_params)))
    with pytest.raises(ValueError, match=r"has no gen_params_of_old\['"):  # absent: not faked
        ckpt.restore_field("gen_params_of_old", abstract.gen_ema)
    wider = tiny_config()
    wider.gen.widths = (8, 8, 8)
    with pytest.raises(ValueError, match="does not match this config's model"):
        ckpt.restore_field("gen_ema", abstract_state(wider).gen_ema)
    ckpt.close()


def test_best_tracker_keeps_the_better_value_for_each_direction(tmp_path):
    psnr = validation.BestTracker(str(tmp_path / "a"), "val/psnr_hole")
    assert psnr.improves(20.0)
    psnr.record(10, 20.0, {})
    assert psnr.improves(21.0) and not psnr.improves(19.0) and not psnr.improves(float("nan"))
    lpips = validation.BestTracker(str(tmp_path / "b"), "val/lpips")
    lpips.record(10, 0.2, {})
    assert lpips.improves(0.1) and not lpips.improves(0.3)
    assert validation.BestTracker(str(tmp_path / "b"), "val/lpips").best["value"] == 0.2
    with pytest.raises(ValueError, match="best_metric"):
        validation.BestTracker(str(tmp_path), "val/psnr")


def _pushpull_reference(image, valid):
    """Push-pull in float64 NumPy, written from the description (not from fill.py)."""
    levels_img, levels_w = [image * valid], [valid]
    while min(levels_img[-1].shape[:2]) > 2:
        a, w = levels_img[-1], levels_w[-1]
        levels_img.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        levels_w.append(0.25 * (w[0::2, 0::2] + w[1::2, 0::2] + w[0::2, 1::2] + w[1::2, 1::2]))
    fill = levels_img[-1] / np.maximum(levels_w[-1], 1e-6)
    for a, w in zip(levels_img[-2::-1], levels_w[-2::-1], strict=True):
        up = np.asarray(jax.image.resize(fill, (2 * fill.shape[0], 2 * fill.shape[1], 3), "linear"))
        trust = np.clip(4 * w, 0, 1)
        fill = a / np.maximum(w, 1e-6) * trust + up * (1 - trust)
    return image * valid + fill * (1 - valid)


def test_pushpull_fill_matches_a_float64_reference_and_keeps_known_pixels():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (32, 32, 3))
    valid = np.ones((32, 32, 1))
    valid[8:20, 4:28] = 0
    got = np.asarray(pushpull_fill(jnp.asarray(image[None], jnp.float32), jnp.asarray(valid[None])))
    want = _pushpull_reference(image, valid)
    assert np.abs(got[0] - want).max() < 1e-5
    np.testing.assert_array_equal(
        got[0][valid[..., 0] > 0], image[valid[..., 0] > 0].astype(np.float32)
    )
    # A flat image is filled with its own colour.
    flat = np.full((1, 32, 32, 3), 0.3, np.float32)
    np.testing.assert_allclose(
        pushpull_fill(flat, jnp.asarray(valid[None], jnp.float32)), flat, atol=1e-6
    )


def test_a_coarse_fill_generator_starts_at_the_fill():
    config = tiny_config()
    config.gen.coarse_fill = "pushpull"
    gan = InpaintingGAN(config)
    batch = synthetic_batch(config.image_size, 2)
    state = jax.jit(gan.init)(jax.random.key(0))
    pred, _ = gan.generate(state.gen_params, batch)
    occluded, _, hole = prepare_batch(batch)
    np.testing.assert_allclose(pred, pushpull_fill(occluded * (1 - hole), 1 - hole), atol=1e-6)
    config.gen.coarse_fill = "harmonic"
    state = jax.jit(InpaintingGAN(config).init)(jax.random.key(0))
    pred, _ = InpaintingGAN(config).generate(state.gen_params, batch)
    np.testing.assert_allclose(pred, pushpull_fill(occluded * (1 - hole), 1 - hole, 20), atol=1e-6)
    config.gen.coarse_fill = "biharmonic"
    state = jax.jit(InpaintingGAN(config).init)(jax.random.key(0))
    pred, _ = InpaintingGAN(config).generate(state.gen_params, batch)
    want = pushpull_fill(occluded * (1 - hole), 1 - hole, 40, order=2)
    np.testing.assert_allclose(pred, want, atol=1e-6)
    config.gen.coarse_fill = "telea"
    with pytest.raises(ValueError, match="coarse_fill"):
        InpaintingGAN(config).init(jax.random.key(0))


def test_relaxed_fills_are_harmonic_and_biharmonic_and_the_numpy_twin_agrees():
    from jaxinpaint.fills import pushpull_fill as twin

    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.uniform(0, 1, (64, 64, 3)).astype(np.float32), (0, 0), 3)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 12:40] = True
    valid = jnp.asarray((~hole)[None, ..., None], jnp.float32)

    def laplace_residual(x):
        mean = 0.25 * (x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:])
        return np.abs(mean - x[1:-1, 1:-1])[hole[1:-1, 1:-1]].mean()

    def biharmonic_residual(x):  # the 13-point stencil of Δ²
        lap = x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] - 4 * x[1:-1, 1:-1]
        bilap = lap[:-2, 1:-1] + lap[2:, 1:-1] + lap[1:-1, :-2] + lap[1:-1, 2:]
        bilap = bilap - 4 * lap[1:-1, 1:-1]
        return np.abs(bilap)[hole[2:-2, 2:-2]].mean()

    fills = {}
    for relax, order in ((0, 1), (20, 1), (40, 2)):
        got = np.asarray(pushpull_fill(jnp.asarray(image[None]), valid, relax, order))[0]
        np.testing.assert_allclose(got, twin(image, hole, relax, order), atol=2e-5)
        fills[relax, order] = got
    assert laplace_residual(fills[20, 1]) < 0.5 * laplace_residual(fills[0, 1])
    assert biharmonic_residual(fills[40, 2]) < 0.5 * biharmonic_residual(fills[20, 1])
    # On a smooth image the biharmonic fill continues the border's slopes: closer to the truth.
    error = {k: np.abs(v - image)[hole].mean() for k, v in fills.items()}
    assert error[40, 2] < error[20, 1] < error[0, 1]
    with pytest.raises(ValueError, match="order"):
        pushpull_fill(jnp.asarray(image[None]), valid, 5, order=3)
