"""The structure loss (jaxinpaint/gan.py, losses.structure) and the structure metric
(jaxinpaint/evaluation/structure.py) on aligned sample faces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inpaint_tiny import tiny_config

from data_pipeline import sample_faces
from jaxinpaint import losses
from jaxinpaint.evaluation.structure import StructureError
from jaxinpaint.gan import InpaintingGAN

pytestmark = pytest.mark.usefixtures("fast_compile")

SIZE = 64


@pytest.fixture(scope="module")
def faces():
    """Three aligned sample faces at 64 px in [0, 1], a hole over the eyes and brows, and the
    same faces with that hole filled flat grey."""
    crops = np.stack([f.image for f in sample_faces.load(SIZE, align=True)[:3]])
    original = crops.astype(np.float32) / 255.0
    hole = np.zeros((*original.shape[:3], 1), np.float32)
    hole[:, int(0.28 * SIZE) : int(0.48 * SIZE), int(0.15 * SIZE) : int(0.85 * SIZE)] = 1
    grey = original * (1 - hole) + 0.5 * hole
    return original, hole, grey


def test_structure_term_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 2, 5, 2))
    w = (rng.random((2, 5)) > 0.5).astype(np.float64)
    want = (w * np.abs(a - b).sum(-1)).sum() / w.sum()
    got = losses.structure(*(jnp.asarray(x, jnp.float32) for x in (a, b, w)))
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert float(losses.structure(a, b, np.zeros_like(w))) == 0.0  # no point in the hole


def test_structure_loss_sees_the_eyes_filled_flat_and_reaches_the_composite(faces):
    original, hole, grey = faces
    config = tiny_config()
    config.loss.structure = 1.0
    gan = InpaintingGAN(config)
    mesh = jax.tree.map(jnp.asarray, gan.frozen_params()["face_mesh"])
    assert gan.frozen_params()["vgg"] is not None  # the tiny config's perceptual term

    @jax.jit
    def term_and_grad(composite, hole):
        return jax.value_and_grad(lambda c: gan._structure(c, original, hole, mesh))(composite)

    same, _ = term_and_grad(original, hole)
    assert abs(float(same)) < 1e-6
    flat, grad = term_and_grad(grey, hole)
    # a few pixels of the 192-px window per point, as fractions of it
    assert 0.002 < float(flat) < 0.2, float(flat)
    grad = np.abs(np.asarray(grad)).sum(-1)
    assert grad[hole[..., 0] > 0].mean() > 0
    # A hole that covers no point of the mesh (a corner of the crop) weighs no point.
    corner = np.zeros_like(hole)
    corner[:, :6, :6] = 1
    off_face, _ = term_and_grad(original * (1 - corner) + 0.5 * corner, corner)
    assert float(off_face) == 0.0


def test_a_negative_structure_weight_is_refused():
    config = tiny_config()
    config.loss.structure = -1.0
    with pytest.raises(ValueError, match=r"config\.loss\.structure must be >= 0"):
        InpaintingGAN(config)


def test_structure_metric(faces):
    original, hole, grey = faces
    metric = StructureError()
    assert (np.abs(metric(original, original, hole)) < 1e-6).all()
    flat = metric(grey, original, hole)
    assert (flat > 0.01).all() and (flat < 1).all(), flat
    # No part of the face in the hole, no face in the original: NaN, skipped by the means.
    corner = np.zeros_like(hole)
    corner[:, :6, :6] = 1
    assert np.isnan(metric(original, original, corner)).all()
    noise = np.random.default_rng(0).random(original.shape, dtype=np.float32)
    assert np.isnan(metric(noise, noise, hole)).all()
    # Framed by the face BlazeFace finds instead of the template: the same kind of numbers.
    framed = metric(grey, original, hole, aligned=False)
    assert (framed > 0.01).all() and (framed < 1).all(), framed
