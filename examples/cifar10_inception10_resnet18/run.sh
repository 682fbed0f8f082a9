#!/usr/bin/env bash
# Inception10 and ResNet-18 (CIFAR) on CIFAR-10's python batches, with checkpoints, curves.png
# and `netspec eval` on test_batch. The Inception10 run is stopped halfway through its second
# epoch (--max-steps, standing in for an interruption) and continued with --resume.
#
#   examples/cifar10_inception10_resnet18/run.sh [--tiny]
#
# --tiny: 50 training and 20 test images, 2 epochs of 3 steps for Inception10 and 1 for
# ResNet-18 (what CI runs); otherwise 5,000 and 1,000 generated images (or all of the real
# data), 5 and 3 epochs. Environment:
#   EXAMPLE_OUT  where everything goes (default examples/cifar10_inception10_resnet18/out)
#   CIFAR10      the real cifar-10-batches-py folder instead of the generated one
#   EPOCHS       epochs of both runs (default: 2 and 1 with --tiny, else 5 and 3)
#   PYTHON       the Python with netspec installed (default: python)
PATH_VARS="CIFAR10"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"

if [ "$TINY" = 1 ]; then
    sizes=(--per-batch 10 --test 20); train=50; batch=16
    epochs_inception="${EPOCHS:-2}"; epochs_resnet="${EPOCHS:-1}"
else
    sizes=(--per-batch 1000 --test 1000); train=5000; batch=32
    epochs_inception="${EPOCHS:-5}"; epochs_resnet="${EPOCHS:-3}"
fi

echo "== data"
if [ -n "${CIFAR10:-}" ]; then
    data="$CIFAR10"; train=50000
    echo "using the CIFAR-10 batches in $data"
else
    rm -rf "$OUT/cifar-10-batches-py"
    "$PYTHON" "$HERE/make_cifar10.py" "$OUT" "${sizes[@]}"
    data="$OUT/cifar-10-batches-py"
fi
steps=$((train / batch))  # steps per epoch (the last, partial batch is dropped)
stop=$((steps + steps / 2))

augment=(--set training.augment.random_crop=4 --set training.augment.horizontal_flip=true)
# Inception10 keeps its spec's training section (Adam, 1e-3, cosine); ResNet-18's spec has none:
# SGD with Nesterov momentum and weight decay, as kuangliu/pytorch-cifar trains it.
resnet_training=(
    --set "training.optimizer={name: sgd, momentum: 0.9, nesterov: true}"
    --set training.learning_rate=0.05
    --set training.schedule=cosine
    --set training.weight_decay=5e-4
)

run_of() { echo "$OUT/runs/$(basename "$1" .yaml)"; }

spec=specs/inception10.yaml
run="$(run_of "$spec")"
options=(--data "$data" --out "$run" --epochs "$epochs_inception" --batch-size "$batch" "${augment[@]}")
echo "== train $spec, stopped after $stop steps (epoch 2, step $((stop - steps)) of $steps)"
netspec train "$spec" "${options[@]}" --overwrite --max-steps "$stop" ${PROGRESS[@]+"${PROGRESS[@]}"}
echo "stopped after $stop steps; checkpoints (the newest two and the best):" \
    "$(ls "$run/checkpoints" | sort -n | xargs)"
echo "== resume $spec (the same command, with --resume)"
netspec train "$spec" "${options[@]}" --resume ${PROGRESS[@]+"${PROGRESS[@]}"}
echo "== eval $spec"
netspec eval "$run" --data "$data"

spec=specs/resnet18_cifar.yaml
run="$(run_of "$spec")"
echo "== train $spec"
netspec train "$spec" --data "$data" --out "$run" --overwrite --epochs "$epochs_resnet" \
    --batch-size "$batch" "${augment[@]}" "${resnet_training[@]}" ${PROGRESS[@]+"${PROGRESS[@]}"}
echo "== eval $spec"
netspec eval "$run" --data "$data"

echo "curves: $(run_of specs/inception10.yaml)/curves.png $(run_of specs/resnet18_cifar.yaml)/curves.png"
