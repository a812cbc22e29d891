"""config.layer_ops: chosen per platform in jaxinpaint/backends.py, same values either way."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inpaint_tiny import synthetic_batch, tiny_config

from jaxinpaint import backends
from jaxinpaint.gan import FAST_COMPILE, InpaintingGAN, prepare_batch
from jaxinpaint.train import Trainer, make_mesh

pytestmark = pytest.mark.usefixtures("fast_compile")


def test_auto_picks_per_platform_and_a_name_overrides_it():
    assert backends.layer_ops("auto", "cpu") is backends.LAYER_OPS["fast"]
    assert backends.layer_ops("auto", "gpu") is backends.LAYER_OPS["fast"]
    assert backends.layer_ops("auto", "tpu") is backends.XLA_OPS  # not measured there
    for name, ops in backends.LAYER_OPS.items():
        assert backends.layer_ops(name, "cpu") is ops
        assert ops.name == name
    with pytest.raises(ValueError, match=r"config\.layer_ops must be 'auto' or one of .*'fst'"):
        backends.layer_ops("fst", "cpu")
    assert backends.compiler_options("cpu") == backends.CPU_COMPILER_OPTIONS
    assert backends.compiler_options("gpu") is None


def test_the_trainer_builds_the_models_with_its_platforms_choice():
    config = tiny_config()
    mesh = make_mesh(config.global_batch_size)
    assert Trainer(config, mesh).gan.ops is backends.layer_ops("auto", backends.platform_of(mesh))
    config.layer_ops = "xla"
    gan = Trainer(config, mesh).gan
    assert gan.ops is backends.XLA_OPS
    assert gan.generator.ops is gan.vgg.ops is gan.discriminators["local"].ops is gan.ops


def gan_with(ops: str) -> InpaintingGAN:
    config = tiny_config()
    config.layer_ops = ops
    return InpaintingGAN(config)


@pytest.fixture(scope="module")
def setup():
    gan = gan_with("xla")
    state = jax.jit(gan.init, compiler_options=FAST_COMPILE)(jax.random.key(0))
    batch = jax.tree.map(jnp.asarray, synthetic_batch(gan.config.image_size, 2))
    return state, batch, jax.tree.map(jnp.asarray, gan.frozen_params())


def lowered_step(gan: InpaintingGAN, setup) -> str:
    state, batch, frozen = setup
    return jax.jit(gan.train_step).lower(state, batch, jax.random.key(1), frozen).as_text()


@pytest.mark.parametrize("ops", list(backends.LAYER_OPS))
def test_every_pool_and_strided_conv_of_the_step_goes_through_the_chosen_ops(ops, setup):
    text = lowered_step(gan_with(ops), setup)
    # XLA's gradient of a max pool is select-and-scatter, that of a strided conv a convolution
    # of the zero-dilated output gradient; the fast ops leave neither anywhere in the step.
    assert ("select_and_scatter" in text) == (ops in ("xla", "fast_conv"))
    assert ("lhs_dilate = [2, 2]" in text) == (ops in ("xla", "fast_pool"))


def values_and_gradients(gan: InpaintingGAN, setup):
    """Each model's output and its gradients (parameters, and the images for the critics)."""
    state, batch, frozen = setup
    occluded, target, hole = prepare_batch(batch)

    def generator(params):
        pred, _ = gan.generator.apply({"params": params}, occluded, hole, train=False)
        return jnp.sum(pred * target), pred

    def discriminators(params, images):
        logits = [d.apply({"params": params[n]}, images[n]) for n, d in gan.discriminators.items()]
        return sum(jnp.sum(x) for x in logits), logits

    def vgg16(images):
        feats = gan.vgg.apply(frozen["vgg"], images)
        return sum(jnp.sum(f * f) for f in feats), feats

    images = {"global": target, "local": target[:, : gan.local_size, : gan.local_size]}
    with_images = jax.value_and_grad(discriminators, argnums=(0, 1), has_aux=True)
    return {
        "generator": jax.jit(jax.value_and_grad(generator, has_aux=True))(state.gen_params),
        "discriminators": jax.jit(with_images)(state.disc_params, images),
        "vgg": jax.jit(jax.value_and_grad(vgg16, has_aux=True))(target),
    }


def test_the_fast_ops_give_xlas_values_and_gradients(setup):
    # "fast" swaps both ops; the test above shows that fast_conv and fast_pool swap one each.
    reference = values_and_gradients(gan_with("xla"), setup)
    other = values_and_gradients(gan_with("fast"), setup)
    for part in reference:
        ref_leaves, leaves = jax.tree.leaves(reference[part]), jax.tree.leaves(other[part])
        assert len(ref_leaves) == len(leaves), part
        for a, b in zip(ref_leaves, leaves, strict=True):
            a, b = np.asarray(a), np.asarray(b)
            # float32 summation order only: equal to ~1e-6 of each array's scale
            scale = float(np.max(np.abs(a))) + 1e-12
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * scale, err_msg=part)
