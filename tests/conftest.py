"""Fixtures shared by several test modules."""

import jax
import pytest

# The tests compare against float32/float64 references. On GPUs XLA runs float32 convolutions and
# matmuls in TF32 by default: on an H100, 11 of pconv's 28 PyTorch-reference cases then differ by
# up to 2e-4 relative (all pass at full precision). Training keeps the faster default.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="module")
def fast_compile():
    """Unoptimised XLA compiles small graphs much faster; the setting is restored afterwards.
    Use with `pytestmark = pytest.mark.usefixtures("fast_compile")`."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
