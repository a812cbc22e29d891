"""share_gpu_memory: JAX must not preallocate the GPU that torch's detector shares (reconstruct)."""

import os
import subprocess
import sys

import pytest

from jaxinpaint import gpu_memory

# Runs in a fresh interpreter: what JAX sees is the environment when it is first imported.
PROBE = """
import os, sys
from jaxinpaint.gpu_memory import share_gpu_memory
share_gpu_memory()
assert "jax" not in sys.modules, "the helper itself must not import jax"
for name in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION"):
    print(os.environ.get(name))
"""


def probe(**env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in (gpu_memory.PREALLOCATE, gpu_memory.MEM_FRACTION)
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_preallocation_is_off_before_jax_is_imported():
    assert probe() == ["false", "None"]


def test_a_users_own_setting_is_kept():
    assert probe(XLA_PYTHON_CLIENT_MEM_FRACTION="0.4") == ["None", "0.4"]
    assert probe(XLA_PYTHON_CLIENT_PREALLOCATE="true") == ["true", "None"]


def test_too_late_once_jax_is_imported():
    import jax  # noqa: F401 (this test process has it already; the call must say it is too late)

    with pytest.raises(RuntimeError, match="before jax is imported"):
        gpu_memory.share_gpu_memory()
