#!/bin/bash
# Inpainter training on a Cloud TPU VM slice: run this same command on every worker at once, e.g.
#
#   gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command \
#     "cd ~/jaxinpaint && WORKDIR=/mnt/shared/runs/full bash launch/cluster/tpu_vm_train.sh \
#      --config.global_batch_size=256"
#
# Each worker is one JAX process; jax.distributed.initialize() finds the others from the TPU VM's
# metadata. WORKDIR must be the same shared folder on every worker (a Filestore/NFS mount or
# gcsfuse); re-running the command resumes from its latest checkpoint. The global batch must
# divide by the total TPU core count. Set up once per worker: `make setup` followed by
# `.venv/bin/pip install "jax[tpu]==0.10.2"` (the lock file pins the CPU jaxlib).
set -euo pipefail

: "${WORKDIR:?set WORKDIR to a folder shared by all workers}"
CONFIG=${CONFIG:-configs/full.py}
PYTHON=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/../.."

exec "$PYTHON" launch/train.py --config="$CONFIG" --workdir="$WORKDIR" "$@"
