#!/usr/bin/env bash
# A lent GPU's throughput checks (docs/bench.md, "On a GPU"), in two parts that each fit one
# 10-minute command of the device tool. Prepare here with `bash bench/gpu_kit.sh`; then, on the
# device machine, from the repository root, with ".gpu" carried:
#
#     bash bench/gpu_round.sh fp32   # the layer tests on the GPU; float32: the shipped step
#                                    # against XLA's own layer ops, and the batch sweep (MFU)
#     bash bench/gpu_round.sh bf16   # the same in bfloat16, the twin under torch.autocast
#
# Logs and JSON go to $OUT (the device tool's), else bench/results/. The fp32 part decides
# `jaxinpaint/backends.py`'s AUTO_LAYER_OPS["gpu"]: `jax_xla_over_torch` above
# `jax_over_torch` means XLA's own ops are the faster ones there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD:$PWD/.gpu/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
out=${OUT:-bench/results}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

case "${1:-}" in
fp32)
    "$PY" -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_fast_conv.py \
        tests/test_fast_pool.py tests/test_pconv.py 2>&1 | tee "$out/gpu_tests.log" ||
        echo "gpu_round: a test failed (gpu_tests.log); timing the step anyway" >&2
    "$PY" bench/train_step.py --variants=shipped,xla --repeats=10 --batches=4,8,16,32 \
        --json="$out/train_step_fp32.json" 2>&1 | tee "$out/train_step_fp32.log"
    ;;
bf16)
    "$PY" bench/train_step.py --variants=shipped,xla --compute_dtype=bfloat16 --repeats=10 \
        --batches=4,8,16,32,64 --json="$out/train_step_bf16.json" 2>&1 |
        tee "$out/train_step_bf16.log"
    ;;
*)
    echo "usage: bash bench/gpu_round.sh fp32|bf16" >&2
    exit 2
    ;;
esac
