"""GPU memory when JAX shares the device with another framework (reconstruct: torch's detector).

By default JAX's GPU backend takes 75 % of the device's memory when it starts, whether it needs it
or not, and torch's detector then runs out. `share_gpu_memory()` turns that preallocation off for
this process, so each framework takes what it uses. It only sets environment variables that JAX
reads when it starts, so it must run before jax is imported; this module imports no jax itself.

A user who prefers preallocation with a bound (faster allocation, no fragmentation) sets
`XLA_PYTHON_CLIENT_MEM_FRACTION=0.5` (say) before the command; that choice is left as it is.
"""

import os
import sys

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
MEM_FRACTION = "XLA_PYTHON_CLIENT_MEM_FRACTION"


def share_gpu_memory() -> None:
    """Makes JAX allocate GPU memory as it needs it instead of 75 % up front, unless the user
    has set either variable. RuntimeError if jax is already imported (too late to take effect)."""
    if "jax" in sys.modules:
        raise RuntimeError(
            "share_gpu_memory() must run before jax is imported: JAX reads "
            f"{PREALLOCATE} when it starts"
        )
    if PREALLOCATE not in os.environ and MEM_FRACTION not in os.environ:
        os.environ[PREALLOCATE] = "false"
