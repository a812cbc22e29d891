"""config.compute_dtype="bfloat16": the step computes in bfloat16 and learns as in float32."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inpaint_tiny import synthetic_batch, tiny_config

from jaxinpaint.gan import FAST_COMPILE, InpaintingGAN
from jaxinpaint.inference import Inpainter

pytestmark = pytest.mark.usefixtures("fast_compile")

LOSSES = ("gen/loss", "gen/l1_hole", "gen/perceptual", "gen/style", "disc/loss")


def config_in(dtype: str):
    config = tiny_config()
    config.compute_dtype = dtype
    return config


@pytest.fixture(scope="module")
def setup():
    """The float32 initial state (parameters are float32 in both), the batch and the fixed
    networks (VGG)."""
    config = config_in("float32")
    gan = InpaintingGAN(config)
    state = jax.jit(gan.init, compiler_options=FAST_COMPILE)(jax.random.key(0))
    frozen = jax.tree.map(jnp.asarray, gan.frozen_params())
    return state, synthetic_batch(config.image_size, 2), frozen


@functools.cache
def train_step(dtype: str):
    return jax.jit(InpaintingGAN(config_in(dtype)).train_step)  # compiled once per dtype


def run(dtype, setup, steps):
    state, batch, frozen = setup
    step = train_step(dtype)
    history = []
    for _ in range(steps):
        state, metrics = step(state, batch, jax.random.key(1), frozen)
        history.append({k: float(v) for k, v in metrics.items()})
    return state, history


def test_one_bfloat16_step_matches_float32(setup):
    f32_state, (f32,) = run("float32", setup, 1)
    bf16_state, (bf16,) = run("bfloat16", setup, 1)
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2**-9 = 0.2 %); through a few dozen
    # layers the losses agree to a few per cent.
    for key in LOSSES:
        assert bf16[key] == pytest.approx(f32[key], rel=0.05), key
    # Parameters, optimizer states and the average stay float32.
    floats = {x.dtype for x in jax.tree.leaves(bf16_state) if jnp.issubdtype(x.dtype, jnp.floating)}
    assert floats == {jnp.dtype("float32")}
    # The computation itself is in bfloat16: the updates differ from float32's.
    pairs = zip(*map(jax.tree.leaves, (bf16_state.gen_params, f32_state.gen_params)), strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)


def test_a_short_bfloat16_run_learns_like_float32(setup):
    _, f32 = run("float32", setup, 20)
    _, bf16 = run("bfloat16", setup, 20)

    def tail(history):
        return np.mean([h["gen/loss"] for h in history[-3:]])

    assert tail(bf16) < 0.8 * bf16[0]["gen/loss"]
    assert tail(bf16) == pytest.approx(tail(f32), rel=0.1)


def test_inference_computes_in_float32_and_bad_dtypes_are_refused(setup):
    state = setup[0]
    config = config_in("bfloat16")
    face = np.full((config.image_size, config.image_size, 3), 128, np.uint8)
    hole = np.zeros(face.shape[:2], bool)
    hole[8:16, 8:24] = True
    bf16_trained = Inpainter(config, state.gen_params)(face, hole)
    np.testing.assert_array_equal(
        bf16_trained, Inpainter(config_in("float32"), state.gen_params)(face, hole)
    )
    with pytest.raises(ValueError, match=r"config\.compute_dtype must be one of"):
        InpaintingGAN(config_in("float16"))
