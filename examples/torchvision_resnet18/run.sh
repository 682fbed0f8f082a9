#!/usr/bin/env bash
# torchvision's ResNet-18 brought into specs/resnet18.yaml by its weights (a state_dict), then
# fine-tuned on a small image folder: rows up to conv4_x frozen, conv5_x at 0.1 x the learning
# rate, a new 4-class fc; then `netspec eval`.
#
#   examples/torchvision_resnet18/run.sh [--tiny]
#
# --tiny: 12 images, 1 epoch of 2 steps, stand-in weights (what CI runs); otherwise 200 images,
# 3 epochs, and torchvision's real weights when torch and torchvision are installed (they are
# downloaded once), else the stand-in. Environment:
#   EXAMPLE_OUT       where everything goes (default examples/torchvision_resnet18/out)
#   RESNET18_WEIGHTS  a weights file to use (.pth state_dict or .safetensors), e.g. the real one
#   IMAGES            an image folder (one sub-folder per class) instead of the generated one
#   EPOCHS            epochs (default: 1 with --tiny, else 3)
#   PYTHON            the Python with netspec installed (default: python)
PATH_VARS="RESNET18_WEIGHTS IMAGES"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"

if [ "$TINY" = 1 ]; then
    images=(--per-class 3 --size 64); epochs="${EPOCHS:-1}"; batch=4
else
    images=(--per-class 50 --size 96); epochs="${EPOCHS:-3}"; batch=16
fi

echo "== weights"
if [ -n "${RESNET18_WEIGHTS:-}" ]; then
    weights="$RESNET18_WEIGHTS"
    echo "using $weights"
elif [ "$TINY" = 0 ] && "$PYTHON" -c "import torchvision" 2>/dev/null; then
    weights="$OUT/resnet18.pth"
    "$PYTHON" "$HERE/resnet18_weights.py" "$weights"
else
    weights="$OUT/resnet18_standin.safetensors"
    "$PYTHON" "$HERE/resnet18_weights.py" --stand-in "$weights"
fi

echo "== data"
if [ -n "${IMAGES:-}" ]; then
    data="$IMAGES"
    echo "using the image folder $data"
else
    data="$OUT/textures"
    rm -rf "$data"
    "$PYTHON" "$HERE/make_textures.py" "$data" "${images[@]}"
fi

echo "== fine-tune"
# torchvision's models take (x/255 - mean) / std with ImageNet's mean and std, in RGB.
netspec train specs/resnet18.yaml --data "$data" --out "$OUT/run" --overwrite \
    --init-from "$weights" \
    --set "training.freeze={until: conv4_x}" \
    --set training.backbone_lr_scale=0.1 \
    --set "training.optimizer={name: sgd, momentum: 0.9}" \
    --set training.learning_rate=0.001 \
    --set "training.normalize.mean=[0.485, 0.456, 0.406]" \
    --set "training.normalize.std=[0.229, 0.224, 0.225]" \
    --epochs "$epochs" --batch-size "$batch" ${PROGRESS[@]+"${PROGRESS[@]}"}

echo "== eval"
netspec eval "$OUT/run"
