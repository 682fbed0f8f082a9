#!/usr/bin/env bash
# GoogLeNet (specs/googlenet.yaml, both auxiliary heads) fine-tuned on a 5-class flower folder
# from ImageNet weights: dry run, training with a frozen backbone, predict, ONNX export.
#
#   examples/googlenet_flowers/run.sh [--tiny]
#
# --tiny: 30 small images, 1 epoch of 2 steps (what CI runs). Environment:
#   EXAMPLE_OUT    where everything goes (default examples/googlenet_flowers/out)
#   FLOWERS        a real image folder (e.g. flower_photos/) instead of the generated one
#   GOOGLENET_NPY  a Caffe-converted bvlc_googlenet.npy (real weights) instead of the stand-in
#   EPOCHS         epochs of the full run (default 3)
#   PYTHON         the Python with netspec installed (default: python)
PATH_VARS="FLOWERS GOOGLENET_NPY"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"

if [ "$TINY" = 1 ]; then
    per_class=(--train 4 --val 2 --size 128); epochs=1; batch=10
else
    per_class=(--train 40 --val 10 --size 160); epochs="${EPOCHS:-3}"; batch=16
fi

echo "== data"
if [ -n "${FLOWERS:-}" ]; then
    data="$FLOWERS"
    echo "using the image folder $data"
else
    data="$OUT/flowers"
    rm -rf "$data"
    "$PYTHON" "$HERE/make_flowers.py" "$data" "${per_class[@]}"
fi

echo "== ImageNet weights"
weights="$OUT/googlenet_imagenet.npy"
if [ -n "${GOOGLENET_NPY:-}" ]; then
    "$PYTHON" "$HERE/imagenet_weights.py" "$weights" --from-caffe "$GOOGLENET_NPY"
else
    "$PYTHON" "$HERE/imagenet_weights.py" "$weights"
fi

# Caffe's GoogLeNet takes 0-255 pixels minus the ImageNet mean (104, 117, 123 in BGR):
# (x/255 - mean) / std with std = 1/255 is exactly that, in RGB order.
finetune=(
    --init-from "$weights"
    --set training.freeze=backbone
    --set training.optimizer=adam
    --set training.learning_rate=0.001
    --set "training.normalize.mean=[0.482, 0.459, 0.408]"
    --set "training.normalize.std=[0.0039216]"
)

echo "== which weights go where (--dry-run)"
# (--dry-run writes nothing; --overwrite only lets it check an --out that holds an earlier run)
netspec train specs/googlenet.yaml --data "$data" --out "$OUT/run" --overwrite "${finetune[@]}" \
    --dry-run

echo "== fine-tune: frozen backbone, new 5-class heads"
netspec train specs/googlenet.yaml --data "$data" --out "$OUT/run" --overwrite "${finetune[@]}" \
    --epochs "$epochs" --batch-size "$batch" ${PROGRESS[@]+"${PROGRESS[@]}"}

echo "== predict"
image="$(find "$OUT/run/samples" -type f | sort | head -n 1)"
netspec predict "$OUT/run" "$image"

echo "== export to ONNX"
if "$PYTHON" -c "import onnx" 2>/dev/null; then
    netspec export "$OUT/run" --format onnx -o "$OUT/googlenet.onnx" --overwrite
else
    echo "skipped: the ONNX export needs onnx (pip install -e '.[export]')"
fi
