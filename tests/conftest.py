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

# Under pytest-xdist several test processes share the machine: none may take three quarters of
# a GPU's memory at start, as JAX does by default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

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
def detector_checkpoint(tmp_path_factory):
    """An untrained detector (configs/detector.py at 64 px), saved as a training checkpoint for
    the commands that load one. Untrained, it is sure of nothing but that something is there:
    p(any occluder) is near 0.95 on every region."""
    import torch
    from config_files import load_config

    from detector import checkpoint
    from detector import model as model_lib

    config = load_config("detector")
    torch.manual_seed(0)
    model = model_lib.build_model(config.model, 64, load_weights=False)
    path = tmp_path_factory.mktemp("detector") / "model_final.pt"
    checkpoint.save(path, model=model, optimizer=None, step=0, config=config, image_size=64)
    return path


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
    """A training workdir of the tests' tiny inpainter (tests/inpaint_tiny.py, with the demo's
    biharmonic coarse fill) after one step, shared read-only by the tests of the commands; trained
    once per session, also when pytest-xdist runs the tests in several processes."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    workdir = root / "tiny_workdir"
    with FileLock(str(root / "tiny_workdir.lock")):
        if not (workdir / "config.json").is_file():
            from inpaint_tiny import tiny_config

            from jaxinpaint import train

            config = tiny_config()
            config.gen.coarse_fill = "biharmonic"
            config.total_steps = 1
            shutil.rmtree(workdir, ignore_errors=True)  # a run that died half-way
            train.train_and_evaluate(config, str(workdir))
    return workdir


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, request):
    """launch/export.py on the tiny inpainter and an untrained detector (64 px, threshold 0.05,
    score floor 0.01): FOLDER/exported, with FOLDER/inpainter and FOLDER/model_final.pt, its
    sources. Made once per session, also when pytest-xdist runs the tests in several processes
    (tests/test_export.py checks it; the web tests serve it)."""
    import subprocess
    import sys

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    root = base / "tiny_export"
    with FileLock(str(base / "tiny_export.lock")):
        if not (root / "exported" / "manifest.json").is_file():
            import torch
            from config_files import REPO, load_config

            from detector import checkpoint
            from detector import model as model_lib

            shutil.rmtree(root, ignore_errors=True)  # a run that died half-way
            root.mkdir()
            (root / "inpainter").symlink_to(request.getfixturevalue("tiny_workdir"))
            config = load_config("detector")
            config.predict.score_thresh = 0.05
            torch.manual_seed(0)
            model = model_lib.build_model(config.model, 64, load_weights=False)
            checkpoint.save(
                root / "model_final.pt", model=model, optimizer=None, step=0, config=config,
                image_size=64,
            )  # fmt: skip
            args = [
                f"--inpainter={root / 'inpainter'}",
                f"--detector={root / 'model_final.pt'}",
                f"--output={root / 'exported'}",
                "--score_floor=0.01",
                "--onnx_batch=2",
            ]
            proc = subprocess.run(
                [sys.executable, "launch/export.py", *args],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
    return root
