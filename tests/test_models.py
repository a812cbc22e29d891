"""Generator, discriminators and VGG16 features: shapes, compositing, hole handling, weights."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inpaint_tiny import load_config, synthetic_batch, tiny_config

from jaxinpaint.gan import FAST_COMPILE, InpaintingGAN
from jaxinpaint.models import crop, hole_crop_origin
from jaxinpaint.models.generator import UpConv, upsample2x, upsample2x_conv3x3
from jaxinpaint.vgg import VGG16Features, load_vgg16_params

pytestmark = pytest.mark.usefixtures("fast_compile")


def _count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_full_config_shapes_through_eval_shape():
    gan = InpaintingGAN(load_config("full"))
    state = jax.eval_shape(gan.init, jax.random.key(0))
    batch = gan.dummy_batch(4)
    pred, comp = jax.eval_shape(gan.generate, state.gen_params, batch)
    assert pred.shape == comp.shape == (4, 256, 256, 3)
    assert 40e6 < _count(state.gen_params) < 80e6  # U-Net to 1024 wide + partial encoder
    logits = jax.eval_shape(
        lambda p, x: gan.discriminators["local"].apply({"params": p}, x),
        state.disc_params["local"],
        jax.ShapeDtypeStruct((4, 128, 128, 3), jnp.float32),
    )
    assert logits.shape == (4,)
    # The vanilla encoder's deepest level is 16×16×1024 at 256² (five levels).
    assert state.gen_params["vanilla_encoder"]["conv4_b"]["kernel"].shape == (3, 3, 1024, 1024)


def test_the_long_cpu_config_builds_at_128_with_an_8x8_bottleneck():
    gan = InpaintingGAN(load_config("cpu_long"))
    state = jax.eval_shape(gan.init, jax.random.key(0))
    pred, _ = jax.eval_shape(gan.generate, state.gen_params, gan.dummy_batch(2))
    assert pred.shape == (2, 128, 128, 3)
    assert not gan.uses_vgg  # the demo's recipe: no perceptual or style term
    assert "conv4_b" in state.gen_params["vanilla_encoder"]  # five levels: 128 -> 8


def test_demo_config_runs_and_keeps_known_pixels():
    config = load_config("demo")
    gan = InpaintingGAN(config)
    state = jax.jit(gan.init, compiler_options=FAST_COMPILE)(jax.random.key(0))
    batch = synthetic_batch(config.image_size, 2)
    pred, comp = jax.jit(gan.generate)(state.gen_params, batch)
    assert pred.shape == comp.shape == (2, 64, 64, 3)
    hole = batch["mask"] > 0
    known = np.broadcast_to(~hole, comp.shape)
    np.testing.assert_allclose(
        np.asarray(comp)[known], batch["occluded"][known] / 255.0, rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(comp)[~known], np.asarray(pred)[~known], atol=1e-6)
    assert float(pred.min()) >= 0.0 and float(pred.max()) <= 1.0


def test_occluder_pixels_do_not_reach_the_output():
    config = tiny_config()
    gan = InpaintingGAN(config)
    state = jax.jit(gan.init, compiler_options=FAST_COMPILE)(jax.random.key(1))
    batch = synthetic_batch(config.image_size, 2, seed=3)
    other = dict(batch)
    hole = np.broadcast_to(batch["mask"] > 0, batch["occluded"].shape)
    other["occluded"] = np.where(hole, 255 - batch["occluded"], batch["occluded"]).astype(np.uint8)
    generate = jax.jit(gan.generate)
    a, b = generate(state.gen_params, batch), generate(state.gen_params, other)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    # ...while the known pixels do matter.
    other["occluded"] = np.where(hole, batch["occluded"], 255 - batch["occluded"]).astype(np.uint8)
    c = generate(state.gen_params, other)
    assert float(jnp.max(jnp.abs(a[0] - c[0]))) > 1e-4


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 1, 1, 3), (1, 4, 4, 17)])
def test_upsample_conv_by_phases_equals_conv_of_the_upsampled_input(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal((3, 3, shape[-1], 4)).astype(np.float32)
    want = jax.lax.conv_general_dilated(
        upsample2x(x), kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    got = upsample2x_conv3x3(jnp.asarray(x), jnp.asarray(kernel))
    assert got.shape == want.shape == (shape[0], 2 * shape[1], 2 * shape[2], 4)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="3x3 kernel"):
        upsample2x_conv3x3(jnp.asarray(x), jnp.asarray(kernel[:1]))


def test_up_conv_is_nn_conv_of_the_upsampled_input():
    """Same parameter names, shapes and initial values as the `nn.Conv` it replaces (so older
    checkpoints load), and the same output."""
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 6, 4, 5)), jnp.float32)
    conv = nn.Conv(7, (3, 3), padding="SAME", kernel_init=nn.initializers.he_normal())
    key = jax.random.key(3)
    want = conv.init(key, upsample2x(x))["params"]
    params = UpConv(7).init(key, x)["params"]
    assert jax.tree.structure(params) == jax.tree.structure(want)
    jax.tree.map(np.testing.assert_array_equal, params, want)
    params = {"kernel": params["kernel"], "bias": jnp.linspace(-1.0, 1.0, 7)}
    np.testing.assert_allclose(
        np.asarray(UpConv(7).apply({"params": params}, x)),
        np.asarray(conv.apply({"params": params}, upsample2x(x))),
        rtol=1e-5,
        atol=1e-5,
    )


def test_local_crop_is_centred_on_the_hole_and_clamped():
    hole = np.zeros((3, 32, 32, 1), np.float32)
    hole[0, 10:14, 20:26] = 1  # centre (11.5, 22.5)
    hole[1, 0:3, 29:32] = 1  # corner: clamped
    origin = np.asarray(hole_crop_origin(jnp.asarray(hole), 8))
    assert origin[0].tolist() == [8, 19]
    assert origin[1].tolist() == [0, 24]
    assert origin[2].tolist() == [12, 12]  # empty mask: centred window
    img = jnp.arange(3 * 32 * 32 * 2, dtype=jnp.float32).reshape(3, 32, 32, 2)
    crops = np.asarray(crop(img, jnp.asarray(origin), 8))
    np.testing.assert_array_equal(crops[0], np.asarray(img)[0, 8:16, 19:27])
    with pytest.raises(ValueError, match="larger than the image"):
        hole_crop_origin(jnp.asarray(hole), 33)


def test_vgg_features_match_torchvision_layout():
    torch = pytest.importorskip("torch")
    params = load_vgg16_params()
    x = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    feats = VGG16Features().apply(jax.tree.map(jnp.asarray, params), jnp.asarray(x))
    assert [f.shape for f in feats] == [(1, 16, 16, 64), (1, 8, 8, 128), (1, 4, 4, 256)]

    # Independent reference: the same weights in a plain PyTorch VGG16 (NCHW, OIHW).
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (torch.from_numpy(x).permute(0, 3, 1, 2) - mean) / std
    ref, i = [], 0
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M"):
        if v == "M":
            h = torch.nn.functional.max_pool2d(h, 2)
            ref.append(h.permute(0, 2, 3, 1).numpy())
        else:
            w = torch.from_numpy(params["params"][f"Conv_{i}"]["kernel"]).permute(3, 2, 0, 1)
            b = torch.from_numpy(params["params"][f"Conv_{i}"]["bias"])
            h = torch.relu(torch.nn.functional.conv2d(h, w, b, padding=1))
            i += 1
    for got, want in zip(feats, ref, strict=True):
        assert np.linalg.norm(np.asarray(got) - want) / np.linalg.norm(want) < 1e-4
    # ImageNet weights, not an initialiser's: first-layer filters are far from small noise.
    assert float(np.abs(params["params"]["Conv_0"]["kernel"]).mean()) > 0.1
