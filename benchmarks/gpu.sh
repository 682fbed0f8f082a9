#!/usr/bin/env bash
# The GPU series in one command, on a machine with an NVIDIA GPU and CUDA builds of JAX and
# PyTorch installed (run benchmarks/gpu_wheels.sh first where the machine has no registry):
#   benchmarks/gpu.sh [OUT_DIR]      (default benchmarks/results/gpu)
# Writes one markdown file per series and the raw JSON into OUT_DIR; paste them into
# BENCHMARKS.md. About 25 minutes on one H100; each part can be run alone (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results/gpu}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/netspec-site .whl/*.whl
  export PYTHONPATH=/tmp/netspec-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
# JAX and PyTorch share the GPU in one process: neither may take all its memory up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 - <<'PY'
import jax, torch
assert jax.devices()[0].platform == "gpu", f"JAX sees no GPU: {jax.devices()}"
assert torch.cuda.is_available(), "PyTorch sees no GPU"
PY
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$out/gpu.txt"

run() { python3 benchmarks/run.py "$@"; }
# The issue's targets: googlenet and resnet50 at 224x224, bf16 (AMP for PyTorch), batch 256.
run --models googlenet resnet50 --batch 256 --dtype bfloat16 --rounds 5 --steps 10 \
    --write "$out/imagenet_bf16.md" --json "$out/imagenet_bf16.json"
run --models googlenet resnet50 --batch 128 --dtype float32 --rounds 5 --steps 10 \
    --frameworks netspec flax torch torch.compile --write "$out/imagenet_fp32.md"
run --models lenet5 resnet18_cifar --batch 256 --dtype bfloat16 --rounds 5 --steps 20 \
    --write "$out/small_bf16.md"
# ResNet-50 bf16 images/s with netspec's own command (target >= 3,000 on one H100).
python3 -m netspec bench resnet50 --batch 256 --dtype bfloat16 --steps 30 --json \
    > "$out/bench_resnet50_bf16.json"
python3 benchmarks/techniques.py --model resnet50 --small-model resnet18_cifar --batch 128 \
    > "$out/techniques.md"
python3 benchmarks/input_pipeline.py --images 2048 --batch 256 --workers 0 4 8 16 --processes --dtype bfloat16 \
    --models resnet50 googlenet > "$out/input_pipeline.md"
# The whole training, end to end, against Keras fit and a PyTorch loop (issue 15, item 1).
python3 benchmarks/end_to_end.py --workload folder --epochs 3 --rounds 2 --images 1024 \
    --val-images 256 --batch 64 --workers 8 --write "$out/end_to_end_folder.md"
python3 benchmarks/end_to_end.py --workload cifar --epochs 3 --rounds 2 --images 20000 \
    --val-images 2000 --batch 256 --workers 8 --write "$out/end_to_end_cifar.md"
ls -l "$out"
