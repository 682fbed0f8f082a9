#!/usr/bin/env bash
# AlexNet (specs/alexnet.yaml: grouped convolutions, LRN) with Caffe's bvlc_alexnet weights,
# classifying photos through netspec's Python API (classify.py).
#
#   examples/alexnet_caffe/run.sh [--tiny] [IMAGE...]
#
# --tiny: one photo (what CI runs); the weights are the same size either way. Environment:
#   EXAMPLE_OUT     where everything goes (default examples/alexnet_caffe/out)
#   ALEXNET_NPY     the real bvlc_alexnet.npy instead of the stand-in
#   IMAGENET_NAMES  a file of the 1000 class names (default: torchvision's list, if installed)
#   PYTHON          the Python with netspec installed (default: python)
USAGE="[--tiny] [IMAGE...]" TAKES_ARGS=1 PATH_VARS="ALEXNET_NPY IMAGENET_NAMES"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
images=(${ARGS[@]+"${ARGS[@]}"})

echo "== inputs"
"$PYTHON" "$HERE/prepare_inputs.py" "$OUT"
if [ "${#images[@]}" = 0 ]; then
    images=("$OUT/flower.jpg")
    [ "$TINY" = 1 ] || images+=("$OUT/china.jpg")
fi
names=()
if [ -n "${IMAGENET_NAMES:-}" ]; then
    names=(--names "$IMAGENET_NAMES")
elif [ -f "$OUT/imagenet_classes.txt" ]; then
    names=(--names "$OUT/imagenet_classes.txt")
fi

echo "== weights"
if [ -n "${ALEXNET_NPY:-}" ]; then
    weights="$ALEXNET_NPY"
    echo "using $weights"
else
    weights="$OUT/bvlc_alexnet.npy"
    "$PYTHON" "$HERE/standin_bvlc_alexnet.py" "$weights"
    echo "NOTE: stand-in weights: the classes below are those of an untrained network"
fi

echo "== classify"
"$PYTHON" "$HERE/classify.py" --weights "$weights" ${names[@]+"${names[@]}"} "${images[@]}"
