#!/usr/bin/env bash
# LeNet-5 with and without batch norm (specs/lenet5.yaml, BN before and after each tanh) on
# MNIST-format IDX files; one figure (compare.png) and a table of their final accuracies.
#
#   examples/lenet5_batchnorm/run.sh [--tiny]
#
# --tiny: 300 training and 100 test digits, 2 epochs (what CI runs); otherwise 1,497 and 300
# digits, 30 epochs (the spec's). Environment:
#   EXAMPLE_OUT  where everything goes (default examples/lenet5_batchnorm/out)
#   MNIST        a folder with the real MNIST IDX files instead of the generated ones
#   EPOCHS       epochs of each run (default: 2 with --tiny, else 30)
#   PYTHON       the Python with netspec installed (default: python)
PATH_VARS="MNIST"
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"

if [ "$TINY" = 1 ]; then
    sizes=(--train 300 --test 100); epochs="${EPOCHS:-2}"
else
    sizes=(--train 1497 --test 300); epochs="${EPOCHS:-30}"
fi

echo "== data"
if [ -n "${MNIST:-}" ]; then
    data="$MNIST"
    echo "using the MNIST IDX files in $data"
else
    data="$OUT/mnist"
    rm -rf "$data"
    "$PYTHON" "$HERE/make_mnist_idx.py" "$data" "${sizes[@]}"
fi

# The three networks train with the same options (each spec's training section is lenet5's).
for spec in specs/lenet5.yaml "$HERE/lenet5_bn_before.yaml" "$HERE/lenet5_bn_after.yaml"; do
    name="$(basename "$spec" .yaml)"
    echo "== train $name"
    netspec train "$spec" --data "$data" --out "$OUT/runs/$name" --overwrite --epochs "$epochs" \
        ${PROGRESS[@]+"${PROGRESS[@]}"}
done

echo "== compare"
"$PYTHON" "$HERE/compare.py" "$OUT/runs/lenet5" "$OUT/runs/lenet5_bn_before" \
    "$OUT/runs/lenet5_bn_after" -o "$OUT/compare.png"
