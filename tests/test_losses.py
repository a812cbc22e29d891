"""Inpainting losses against float64 NumPy references."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint import losses


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1, (2, 9, 7, 3))
    target = rng.uniform(0, 1, (2, 9, 7, 3))
    hole = np.zeros((2, 9, 7, 1))
    hole[0, 2:5, 1:4] = 1
    hole[1, 6:9, 5:7] = 1
    return pred, target, hole


def test_l1_valid_and_hole_match_numpy(images):
    pred, target, hole = images
    valid, in_hole = losses.l1_valid_hole(*(jnp.asarray(x, jnp.float32) for x in images))
    err = np.abs(pred - target)
    assert _rel(valid, np.mean((1 - hole) * err)) < 1e-6
    assert _rel(in_hole, np.mean(hole * err)) < 1e-6


def test_gram_and_style_match_numpy():
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(2, 4, 5, c)) for c in (3, 6)]
    out = [f + rng.normal(scale=0.1, size=f.shape) for f in feats]
    comp = [f + rng.normal(scale=0.2, size=f.shape) for f in feats]

    def gram_np(f):
        b, h, w, c = f.shape
        m = f.reshape(b, h * w, c)
        return np.einsum("bnc,bnd->bcd", m, m) / (c * h * w)

    assert _rel(losses.gram(jnp.asarray(feats[0], jnp.float32)), gram_np(feats[0])) < 1e-5
    want = sum(
        np.mean(np.abs(gram_np(o) - gram_np(g))) + np.mean(np.abs(gram_np(c) - gram_np(g)))
        for o, c, g in zip(out, comp, feats, strict=True)
    )
    got = losses.style(*([jnp.asarray(x, jnp.float32) for x in fs] for fs in (out, comp, feats)))
    assert _rel(got, want) < 1e-5
    same = [jnp.asarray(f, jnp.float32) for f in feats]
    assert float(losses.perceptual(same, same, same)) == 0.0


def test_total_variation_uses_the_dilated_hole(images):
    _, target, hole = images
    dil = np.zeros_like(hole)
    for b, y, x in zip(*np.nonzero(hole[..., 0]), strict=True):
        dil[b, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = 1
    assert np.array_equal(np.asarray(losses.dilate(jnp.asarray(hole))), dil)
    p = dil * target
    want = np.mean(np.abs(p[:, 1:] - p[:, :-1])) + np.mean(np.abs(p[:, :, 1:] - p[:, :, :-1]))
    got = losses.total_variation(jnp.asarray(target, jnp.float32), jnp.asarray(hole, jnp.float32))
    assert _rel(got, want) < 1e-5
    # Outside the dilated hole the image does not matter.
    changed = target.copy()
    changed[dil[..., 0] == 0] = 0.123
    again = losses.total_variation(jnp.asarray(changed, jnp.float32), jnp.asarray(hole))
    assert float(again) == pytest.approx(float(got), rel=1e-6)


def test_adversarial_values_and_stability():
    real = jnp.asarray([2.0, 0.5, -1.0])
    fake = jnp.asarray([-2.0, 0.0, 3.0])
    hinge_d = np.mean(np.maximum(0, 1 - np.array([2.0, 0.5, -1.0]))) + np.mean(
        np.maximum(0, 1 + np.array([-2.0, 0.0, 3.0]))
    )
    assert float(losses.adversarial_discriminator(real, fake, "hinge")) == pytest.approx(hinge_d)
    assert float(losses.adversarial_generator(fake, "hinge")) == pytest.approx(-1 / 3)
    extreme = jnp.asarray([-1e4, 1e4])
    for value in (
        losses.adversarial_generator(extreme, "nonsat"),
        losses.adversarial_discriminator(extreme, extreme, "nonsat"),
    ):
        assert np.isfinite(float(value))
    assert float(losses.adversarial_generator(jnp.zeros(2), "nonsat")) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="adv_loss"):
        losses.adversarial_generator(fake, "wasserstein")


def test_generator_loss_is_the_weighted_sum_of_its_terms(images):
    pred, target, hole = (jnp.asarray(x, jnp.float32) for x in images)
    comp = pred * hole + target * (1 - hole)
    rng = np.random.default_rng(2)
    feats = [jnp.asarray(rng.normal(size=(6, 4, 4, 2)), jnp.float32)]
    weights = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1, "adv": 0.3}
    logits = {"global": jnp.asarray([0.5, -0.5]), "local": jnp.asarray([1.0, 2.0])}
    loss, metrics = losses.generator_loss(
        pred=pred,
        composite=comp,
        target=target,
        hole=hole,
        feats_out=[f[:2] for f in feats],
        feats_comp=[f[2:4] for f in feats],
        feats_gt=[f[4:] for f in feats],
        logits_fake=logits,
        weights=weights,
        adv_kind="hinge",
    )
    want = (
        metrics["gen/l1_valid"]
        + 6 * metrics["gen/l1_hole"]
        + 0.05 * metrics["gen/perceptual"]
        + 120 * metrics["gen/style"]
        + 0.1 * metrics["gen/tv"]
        + 0.3 * (metrics["gen/adv_global"] + metrics["gen/adv_local"])
    )
    assert float(loss) == pytest.approx(float(want), rel=1e-6)
    assert float(metrics["gen/adv_local"]) == pytest.approx(-1.5)
    d_loss, d_metrics = losses.discriminator_loss(logits, logits, "hinge")
    assert float(d_loss) == pytest.approx(float(d_metrics["disc/global"] + d_metrics["disc/local"]))


def test_without_vgg_features_the_perceptual_and_style_terms_are_left_out(images):
    pred, target, hole = (jnp.asarray(x, jnp.float32) for x in images)
    comp = pred * hole + target * (1 - hole)
    weights = {"valid": 1.0, "hole": 6.0, "perceptual": 0.0, "style": 0.0, "tv": 0.1, "adv": 0.3}
    logits = {"global": jnp.asarray([0.5, -0.5])}
    loss, metrics = losses.generator_loss(
        pred=pred,
        composite=comp,
        target=target,
        hole=hole,
        feats_out=None,
        feats_comp=None,
        feats_gt=None,
        logits_fake=logits,
        weights=weights,
        adv_kind="hinge",
    )
    assert "gen/perceptual" not in metrics and "gen/style" not in metrics
    want = (
        metrics["gen/l1_valid"]
        + 6 * metrics["gen/l1_hole"]
        + 0.1 * metrics["gen/tv"]
        + 0.3 * metrics["gen/adv_global"]
    )
    assert float(loss) == pytest.approx(float(want), rel=1e-6)


def test_a_gan_without_perceptual_or_style_weight_trains_without_vgg():
    import jax
    from inpaint_tiny import synthetic_batch, tiny_config

    from jaxinpaint.gan import InpaintingGAN

    config = tiny_config()
    config.loss.perceptual = 0.0
    config.loss.style = 0.0
    gan = InpaintingGAN(config)
    assert not gan.uses_vgg
    state = gan.init(jax.random.key(0))
    batch = synthetic_batch(config.image_size, 2)
    # No VGG parameters at all: the step must not read them.
    _, metrics = jax.jit(gan.train_step)(state, batch, jax.random.key(1), None)
    assert "gen/perceptual" not in metrics
    assert all(np.isfinite(float(v)) for v in metrics.values())
