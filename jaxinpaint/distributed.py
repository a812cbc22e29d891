"""Multi-process start-up: one JAX process per host (or per GPU), all devices in one mesh.

`initialize()` decides from explicit arguments or the cluster's environment:

- explicit: `coordinator_address`, `num_processes` and `process_id` (the `--coordinator`,
  `--num_processes`, `--process_id` flags of `launch/train.py`), e.g. several processes on one
  machine or a cluster JAX cannot detect;
- detected: SLURM (`srun`, one task per node), Open MPI (`mpirun`) and Cloud TPU VMs (run on all
  workers) are recognised by `jax.distributed.initialize()` itself;
- otherwise a single process: nothing to initialise.

It must run before anything touches a JAX device.
"""

from __future__ import annotations

import os

import jax
from absl import logging

# Environment variables whose value is the number of processes a cluster launcher started.
_PROCESS_COUNT_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def _cluster_process_count() -> int:
    for var in _PROCESS_COUNT_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")  # set on every worker of a TPU VM slice
    return len(hosts.split(",")) if hosts else 1


def initialize(
    coordinator_address: str = "",
    num_processes: int = 0,
    process_id: int = -1,
) -> None:
    """Joins the processes of a multi-process job into one JAX runtime (no-op for one process)."""
    explicit = bool(coordinator_address) or num_processes > 0 or process_id >= 0
    if explicit:
        if not coordinator_address or num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(
                "multi-process flags need all three of --coordinator=HOST:PORT, "
                "--num_processes=N >= 1 and 0 <= --process_id < N; got "
                f"coordinator={coordinator_address!r}, num_processes={num_processes}, "
                f"process_id={process_id}"
            )
        if num_processes == 1:
            return
        _use_cpu_collectives()
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    elif _cluster_process_count() > 1:
        _use_cpu_collectives()
        jax.distributed.initialize()  # SLURM / Open MPI / TPU VM: JAX reads the environment
    else:
        return
    logging.info(
        "Process %d of %d; %d local and %d global devices.",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


def _use_cpu_collectives() -> None:
    """CPU devices of different processes talk through gloo (GPUs and TPUs bring their own)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
