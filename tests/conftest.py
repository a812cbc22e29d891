"""Fixtures shared by several test modules."""

import atexit
import os
import shutil
import tempfile

# One JAX compilation cache for this test session, for the launchers the tests run as
# subprocesses (each would compile the same tiny models again) and this process; never the
# user's own cache. Set before jax is imported: JAX reads it then.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="jaxinpaint-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

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


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
    """A training workdir of the tests' tiny inpainter (tests/inpaint_tiny.py, with the demo's
    harmonic coarse fill) after one step, shared read-only by the tests of the commands."""
    from inpaint_tiny import tiny_config

    from jaxinpaint import train

    workdir = tmp_path_factory.mktemp("tiny_workdir")
    config = tiny_config()
    config.gen.coarse_fill = "harmonic"
    config.total_steps = 1
    train.train_and_evaluate(config, str(workdir))
    return workdir
