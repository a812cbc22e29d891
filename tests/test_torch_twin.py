"""The PyTorch twin in bench/ must stay the JAX model's twin: same parameter shapes, output shapes,
loss formulas and VGG16 features, so that the train-step benchmark compares like with like."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import configs
from jaxinpaint import losses
from jaxinpaint.gan import InpaintingGAN
from jaxinpaint.vgg import VGG16Features, load_vgg16_params

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


twin = _load("bench_torch_twin", ROOT / "bench" / "torch_twin.py")


def tiny_config():
    c = configs.get("demo")
    c.image_size = 32
    c.global_batch_size = 2
    c.gen.widths = (8, 16, 32)
    c.gen.partial_widths = (8, 16, 16)
    c.gen.partial_kernels = (5, 3, 3)
    c.gen.atrous_width = 16
    c.gen.atrous_rates = (2, 3)
    c.disc.global_widths = (8, 16, 16)
    c.disc.local_widths = (8, 16)
    c.disc.local_size = 16
    # A perceptual term, so that VGG16 is in both steps and its loss terms count (the demo's
    # recipe has none since it dropped VGG16).
    c.loss.perceptual = 0.02
    return c


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def jax_shapes(tree):
    """Parameter shapes in torch's layout: HWIO kernels → OIHW, Dense (in, out) → (out, in)."""
    out = []
    for leaf in jax.tree_util.tree_leaves(tree):
        shape = tuple(leaf.shape)
        if len(shape) == 4:
            shape = (shape[3], shape[2], shape[0], shape[1])
        elif len(shape) == 2:
            shape = shape[::-1]
        out.append(shape)
    return sorted(out)


def torch_shapes(module):
    return sorted(tuple(p.shape) for p in module.parameters())


def test_parameter_shapes_match_the_jax_model():
    config = tiny_config()
    state = jax.eval_shape(InpaintingGAN(config).init, jax.random.key(0))
    model = twin.TwinGAN(config)
    assert torch_shapes(model.generator) == jax_shapes(state.gen_params)
    for name in ("global", "local"):
        assert torch_shapes(model.discriminators[name]) == jax_shapes(state.disc_params[name])


def test_output_shapes_match_the_jax_model():
    config = tiny_config()
    gan = InpaintingGAN(config)
    batch = {k: np.array(v) for k, v in gan.dummy_batch(2).items()}
    state = jax.eval_shape(gan.init, jax.random.key(0))
    pred, comp = jax.eval_shape(gan.generate, state.gen_params, batch)
    model = twin.TwinGAN(config)
    occluded, _, hole = model.prepare_batch(batch)
    with torch.no_grad():
        pred_t, comp_t = model.generator(occluded, hole)
        logits = model.discriminators["local"](comp_t[:, :, :16, :16])
    nhwc = lambda t: tuple(t.permute(0, 2, 3, 1).shape)
    assert nhwc(pred_t) == pred.shape and nhwc(comp_t) == comp.shape
    assert pred_t.is_contiguous(memory_format=torch.channels_last)
    assert logits.shape == (2,)


def test_losses_match_jaxinpaint_losses():
    config = tiny_config()
    rng = np.random.default_rng(0)
    b, s = 2, 16
    pred, comp, target = (rng.uniform(size=(b, s, s, 3)).astype(np.float32) for _ in range(3))
    hole = np.zeros((b, s, s, 1), np.float32)
    hole[:, 4:9, 3:11] = 1.0
    feats = [
        [
            rng.standard_normal((b, s // k, s // k, c)).astype(np.float32)
            for k, c in ((2, 4), (4, 8))
        ]
        for _ in range(3)
    ]
    logits_fake = {n: rng.standard_normal(b).astype(np.float32) for n in ("global", "local")}
    logits_real = {n: rng.standard_normal(b).astype(np.float32) for n in ("global", "local")}
    for kind in ("hinge", "nonsat"):
        config.loss.adv_loss = kind
        expected, _ = losses.generator_loss(
            pred=pred,
            composite=comp,
            target=target,
            hole=hole,
            feats_out=feats[0],
            feats_comp=feats[1],
            feats_gt=feats[2],
            logits_fake=logits_fake,
            weights=config.loss,
            adv_kind=kind,
        )
        to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)
        got = twin.generator_loss(
            to_t(pred),
            to_t(comp),
            to_t(target),
            to_t(hole),
            *[[to_t(f) for f in fs] for fs in feats],
            {n: torch.from_numpy(v) for n, v in logits_fake.items()},
            config.loss,
        )
        assert rel_err(got, expected) < 1e-5, kind
        # Without VGG features (perceptual and style weights 0) both leave those terms out.
        expected_plain, _ = losses.generator_loss(
            pred=pred,
            composite=comp,
            target=target,
            hole=hole,
            feats_out=None,
            feats_comp=None,
            feats_gt=None,
            logits_fake=logits_fake,
            weights=config.loss,
            adv_kind=kind,
        )
        got_plain = twin.generator_loss(
            to_t(pred),
            to_t(comp),
            to_t(target),
            to_t(hole),
            None,
            None,
            None,
            {n: torch.from_numpy(v) for n, v in logits_fake.items()},
            config.loss,
        )
        assert rel_err(got_plain, expected_plain) < 1e-5, kind
        assert rel_err(got_plain, expected) > 1e-3  # the left-out terms did count above
        expected_d, _ = losses.discriminator_loss(logits_real, logits_fake, kind)
        got_d = twin.discriminator_loss(
            {n: torch.from_numpy(v) for n, v in logits_real.items()},
            {n: torch.from_numpy(v) for n, v in logits_fake.items()},
            kind,
        )
        assert rel_err(got_d, expected_d) < 1e-6, kind


def test_vgg_features_match_jaxinpaint_vgg():
    try:
        params = load_vgg16_params()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    img = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    expected = VGG16Features().apply(jax.tree_util.tree_map(jnp.asarray, params), img)
    vgg = twin.VGG16Features()
    vgg.load_jax_params(params["params"])
    with torch.no_grad():
        got = vgg(torch.from_numpy(img).permute(0, 3, 1, 2))
    assert len(got) == len(expected) == 3
    for g, e in zip(got, expected, strict=True):
        assert rel_err(g.permute(0, 2, 3, 1).numpy(), e) < 1e-4


def test_twin_train_step_updates_both_players():
    config = tiny_config()
    model = twin.TwinGAN(config)
    rng = np.random.default_rng(2)
    batch = {
        "occluded": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
        "original": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
        "mask": np.zeros((2, 32, 32, 1), np.uint8),
    }
    batch["mask"][:, 8:20, 10:24] = 255
    gen_before = [p.detach().clone() for p in model.gen_params]
    disc_before = [p.detach().clone() for p in model.disc_params]
    gen_loss, disc_loss = model.train_step(batch)
    assert torch.isfinite(gen_loss) and torch.isfinite(disc_loss)
    assert all(not torch.equal(a, p) for a, p in zip(gen_before, model.gen_params, strict=True))
    assert any(not torch.equal(a, p) for a, p in zip(disc_before, model.disc_params, strict=True))
    assert all(p.grad is None for p in model.gen_params + model.disc_params)


def test_upsample_conv_by_phases_equals_conv_of_the_upsampled_input():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 4, 3, padding=1)
    x = torch.randn(2, 5, 6, 7)
    want = conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    got = twin.upsample2x_conv3x3(x, conv)
    assert got.shape == want.shape == (2, 4, 12, 14)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
