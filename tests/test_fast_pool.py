"""fast_pool.max_pool_2x2: flax's 2×2 max pool, with the same gradient (ties included)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint.layers.fast_pool import max_pool_2x2


def reference(x):
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def test_value_and_gradient_match_flax_max_pool_with_ties():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 8, 3)).astype(np.float32)
    x = np.maximum(x, 0.0)  # ReLU-like: many windows are all zeros (four-way ties)
    x[0, 0, 0, 0] = x[0, 0, 1, 0] = x[0, 1, 1, 0] = 2.0  # a three-way tie at the maximum
    x = jnp.asarray(x)
    g = jnp.asarray(rng.standard_normal((2, 3, 4, 3)).astype(np.float32))
    y, vjp = jax.vjp(max_pool_2x2, x)
    y_ref, vjp_ref = jax.vjp(reference, x)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(vjp(g)[0], vjp_ref(g)[0])
    # Each window's gradient lands on exactly one element.
    assert int(jnp.sum(vjp(jnp.ones_like(g))[0] != 0)) == g.size


def test_odd_sizes_are_a_clear_error():
    with pytest.raises(ValueError, match="even H and W"):
        max_pool_2x2(jnp.zeros((1, 5, 4, 1)))
