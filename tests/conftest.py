"""Fixtures shared by several test modules."""

import jax
import pytest


@pytest.fixture(scope="module")
def fast_compile():
    """Unoptimised XLA compiles small graphs much faster; the setting is restored afterwards.
    Use with `pytestmark = pytest.mark.usefixtures("fast_compile")`."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
