"""fast_conv.conv_general_dilated: same values and gradients as lax.conv_general_dilated."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxinpaint.layers import fast_conv

DN = ("NHWC", "HWIO", "NHWC")


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def grads(conv, x, k, strides, padding):
    """Value and (dx, dk) of a nonlinear loss, so every output pixel gets its own cotangent."""

    def loss(x, k):
        return jnp.sum(jnp.sin(conv(x, k, strides, padding, dimension_numbers=DN)))

    return jax.value_and_grad(loss, argnums=(0, 1))(x, k)


@pytest.mark.parametrize(
    "hw, kernel, strides, padding",
    [
        ((8, 8), (5, 5), (2, 2), "SAME"),  # the discriminators' layers
        ((9, 7), (5, 5), (2, 2), "SAME"),  # odd sizes: XLA pads the extra pixel high
        ((10, 6), (7, 3), (2, 3), "SAME"),
        ((9, 8), (3, 3), (2, 2), "VALID"),
        ((7, 9), (4, 2), (3, 2), ((1, 2), (0, 3))),
        ((6, 6), (1, 1), (2, 2), "SAME"),  # kernel smaller than the stride: zero phases
    ],
)
def test_strided_gradients_match_lax(hw, kernel, strides, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, *hw, 3), np.float32))
    k = jnp.asarray(rng.standard_normal((*kernel, 3, 4), np.float32))
    value, (dx, dk) = grads(fast_conv.conv_general_dilated, x, k, strides, padding)
    value_ref, (dx_ref, dk_ref) = grads(lax.conv_general_dilated, x, k, strides, padding)
    assert rel_err(value, value_ref) < 1e-6
    assert rel_err(dx, dx_ref) < 1e-5
    assert rel_err(dk, dk_ref) < 1e-5


def test_unstrided_and_other_layouts_are_lax_itself():
    def jaxpr(x, k, strides, dn):
        return str(
            jax.make_jaxpr(
                lambda x, k: fast_conv.conv_general_dilated(
                    x, k, strides, "SAME", dimension_numbers=dn
                )
            )(x, k)
        )

    nhwc, hwio = jnp.zeros((1, 6, 6, 2)), jnp.zeros((3, 3, 2, 2))
    nchw, oihw = jnp.zeros((1, 2, 6, 6)), jnp.zeros((2, 2, 3, 3))
    assert "custom_vjp" not in jaxpr(nhwc, hwio, (1, 1), DN)
    assert "custom_vjp" not in jaxpr(nchw, oihw, (2, 2), ("NCHW", "OIHW", "NCHW"))
    assert "custom_vjp" in jaxpr(nhwc, hwio, (2, 2), DN)


def test_drop_in_for_flax_conv():
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 16, 16, 3)), jnp.float32)
    plain = nn.Conv(8, (5, 5), strides=(2, 2), padding="SAME")
    fast = nn.Conv(
        8,
        (5, 5),
        strides=(2, 2),
        padding="SAME",
        conv_general_dilated=fast_conv.conv_general_dilated,
    )
    params = plain.init(jax.random.key(0), x)
    assert jax.tree.structure(fast.init(jax.random.key(0), x)) == jax.tree.structure(params)

    def loss(module, p, x):
        return jnp.sum(module.apply(p, x) ** 2)

    g_fast = jax.grad(loss, argnums=(1, 2))(fast, params, x)
    g_plain = jax.grad(loss, argnums=(1, 2))(plain, params, x)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_plain), strict=True):
        assert rel_err(a, b) < 1e-5


def test_bad_padding_is_a_clear_error():
    x = jnp.zeros((1, 4, 4, 1))
    k = jnp.zeros((3, 3, 1, 1))
    with pytest.raises(ValueError, match="padding must be"):
        fast_conv.conv_general_dilated(x, k, (2, 2), "FULL", dimension_numbers=DN)
