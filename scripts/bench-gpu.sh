#!/usr/bin/env bash
# Issue 9's GPU check in one run of under 10 minutes, on an NVIDIA H100/H200 host that has PyTorch, torchvision
# and JAX with CUDA but no network (our other dependencies travel as wheels in .whl/: `make bench-gpu-wheels`).
#
#   whole job >= 100 images/s at batch 16 with 100 detections per image; network p50 <= 30 ms at batch 1
#
# Ours runs on the JAX backend at both precisions; torchvision's Mask R-CNN (R101-FPN on a GPU) runs alongside at
# the same batch sizes. Figures go to stdout and $OUT/bench-gpu.json (or ./bench-gpu.json).
# Knobs for a dry run on a CPU: BENCH_CONFIG (coco), BENCH_BATCHES ("1 16"), BENCH_REPEAT (10), BENCH_LIMIT_S (540).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import keras, pycocotools" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/maskweb-site .whl/*.whl
  export PYTHONPATH="/tmp/maskweb-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
batches=${BENCH_BATCHES:-1 16}
# shellcheck disable=SC2086  # the batch list is meant to split into words
exec timeout "${BENCH_LIMIT_S:-540}" "$PY" -m backend.cli bench --random-weights --config "${BENCH_CONFIG:-coco}" \
  --batch $batches --peer-batch $batches --peers torchvision --precision exact fast \
  --repeat "${BENCH_REPEAT:-10}" --targets gpu --json "${OUT:-.}/bench-gpu.json"
