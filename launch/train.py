r"""Train the inpainting GAN.

    python launch/train.py --config=configs/demo.py --workdir=runs/demo [--config.total_steps=N]
    python launch/train.py --config=configs/full.py --workdir=runs/full

Running the same command again resumes from the workdir's latest checkpoint.

Several processes (one per host, all devices of all hosts in one mesh): under SLURM, Open MPI or
on a TPU VM slice nothing more is needed (see launch/cluster/); elsewhere give every process
    --coordinator=HOST:PORT --num_processes=N --process_id=I
"""

import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import jaxinpaint
import launch
from jaxinpaint import distributed
from jaxinpaint.train import NonFiniteLossError, train_and_evaluate

_PACKAGE_DIR = os.path.dirname(os.path.abspath(jaxinpaint.__file__))

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, events and samples.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", "", "HOST:PORT of process 0, for a multi-process run JAX cannot detect."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", 0, "Processes in the run (with --coordinator)."
)
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index, 0..num_processes-1.")
flags.mark_flags_as_required(["config", "workdir"])


class _OwnInfoOnly(std_logging.Filter):
    """Keeps INFO lines from this project; libraries (Orbax logs every save) only at WARNING+."""

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or record.pathname.startswith(_PACKAGE_DIR)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.get_absl_handler().addFilter(_OwnInfoOnly())
    try:
        distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except (ValueError, FileNotFoundError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cli():
    """The `jaxinpaint-train` command."""
    launch.run(main, __doc__, config_flag=True)


if __name__ == "__main__":
    cli()
