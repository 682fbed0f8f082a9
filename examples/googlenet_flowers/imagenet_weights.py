"""ImageNet weights for specs/googlenet.yaml as a Caffe-style NumPy dict (`.npy`) netspec reads.

Two modes:

    python imagenet_weights.py OUT.npy                          # a STAND-IN: random values
    python imagenet_weights.py OUT.npy --from-caffe bvlc_googlenet.npy   # real weights

The file is what caffe-tensorflow writes for a Caffe model: a pickled dict from layer name to
[weights, biases], kernels in Caffe's blob layout (conv (out, in, kh, kw), dense (out, in)).
netspec pairs such a dict with the spec by name when its keys are the spec's node names
(`conv1`, `conv2/reduce`, `inception_3a/b3x3/conv`, ..., `linear`), so:

- the stand-in is written with those names and the exact shapes of BVLC GoogLeNet's deploy
  network (1000 classes, no auxiliary classifiers), with random values (He-normal kernels,
  conv1's scaled for Caffe's 0-255 inputs; small random biases). It is NOT trained.
- `--from-caffe` renames a converted bvlc_googlenet's layers (`conv1/7x7_s2` or
  `conv1_7x7_s2`, `inception_3a/3x3_reduce`, ..., `loss3/classifier`) to those names, drops
  the auxiliary classifiers (`loss1/*`, `loss2/*`: netspec initialises `aux1`/`aux2` afresh) and
  reverses conv1's input channels, because Caffe's model reads BGR images and netspec feeds RGB.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

import netspec
from netspec.weights.numpy_source import read_pickled_npy

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "specs" / "googlenet.yaml"

CAFFE_BRANCHES = {
    "1x1": "b1x1",
    "3x3_reduce": "b3x3/reduce",
    "3x3": "b3x3/conv",
    "5x5_reduce": "b5x5/reduce",
    "5x5": "b5x5/conv",
    "pool_proj": "pool_proj/conv",
}
CAFFE_STEM = {
    "conv1_7x7_s2": "conv1",
    "conv2_3x3_reduce": "conv2/reduce",
    "conv2_3x3": "conv2/conv",
    "loss3_classifier": "linear",
}


def deploy_layers() -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """netspec node name -> (Caffe weight shape, bias shape) for every layer of GoogLeNet's
    deploy network (the auxiliary heads, used in training only, left out)."""
    from flax import nnx

    compiled = netspec.compile(SPEC, num_classes=1000)
    network = compiled.network_class()
    abstract = nnx.eval_shape(lambda: network(rngs=nnx.Rngs(0)))
    shapes = {
        "/".join(str(part) for part in path): value.get_value().shape
        for path, value in nnx.to_flat_state(nnx.state(abstract, nnx.Param))
    }
    layers = {}
    for node in compiled.report.nodes:
        if not node.params or node.train_only:
            continue
        kernel, bias = shapes[f"{node.name}/kernel"], shapes[f"{node.name}/bias"]
        if len(kernel) == 4:  # netspec's HWIO -> Caffe's (out, in, kh, kw)
            caffe = (kernel[3], kernel[2], kernel[0], kernel[1])
        else:  # dense (in, out) -> (out, in)
            caffe = (kernel[1], kernel[0])
        layers[node.name] = (caffe, bias)
    return layers


def stand_in(seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (shape, bias) in deploy_layers().items():
        fan_in = int(np.prod(shape[1:]))
        std = np.sqrt(2.0 / fan_in) / (64.0 if name == "conv1" else 1.0)
        kernel = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        weights[name] = [kernel, rng.uniform(-0.01, 0.01, bias).astype(np.float32)]
    return weights


def netspec_name(caffe_name: str) -> str | None:
    """The spec's node for a Caffe layer name ('/' or '_' separated); None for the auxiliary
    classifiers."""
    flat = caffe_name.replace("/", "_")
    if flat.startswith(("loss1_", "loss2_")):
        return None
    if flat in CAFFE_STEM:
        return CAFFE_STEM[flat]
    match = re.fullmatch(r"(inception_\d[a-e])_(.+)", flat)
    if match and match.group(2) in CAFFE_BRANCHES:
        return f"{match.group(1)}/{CAFFE_BRANCHES[match.group(2)]}"
    raise SystemExit(f"error: {caffe_name!r} is not a layer of BVLC GoogLeNet")


def from_caffe(path: Path) -> dict[str, list[np.ndarray]]:
    # A downloaded pickle is untrusted: netspec's reader builds arrays and nothing else
    # (np.load(allow_pickle=True) would run whatever the file names).
    with path.open("rb") as handle:
        data = read_pickled_npy(handle)
    weights = {}
    for caffe_name, blobs in data.items():
        name = netspec_name(str(caffe_name))
        if name is None:
            continue
        if isinstance(blobs, dict):
            blobs = [blobs["weights"], blobs["biases"]]
        kernel, bias = (np.asarray(b, np.float32) for b in blobs)
        if name == "conv1":  # BGR -> RGB: the input-channel axis, whichever layout the file has
            axis = 1 if kernel.shape[1] == 3 else 2
            kernel = np.flip(kernel, axis=axis).copy()
        weights[name] = [kernel, bias]
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .npy file to write")
    parser.add_argument(
        "--from-caffe", type=Path, help="a converted bvlc_googlenet .npy to rename (real weights)"
    )
    parser.add_argument("--seed", type=int, default=0, help="stand-in: the random seed")
    args = parser.parse_args()
    weights = from_caffe(args.from_caffe) if args.from_caffe else stand_in(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, np.array(weights, dtype=object), allow_pickle=True)
    values = sum(w.size + b.size for w, b in weights.values())
    if args.from_caffe:
        print(
            f"wrote {args.out}: {args.from_caffe} renamed, {len(weights)} layers, {values:,} values"
        )
    else:
        print(
            f"wrote {args.out}: STAND-IN ImageNet weights, random values (NOT trained) in the "
            f"layout of a Caffe-converted bvlc_googlenet: {len(weights)} layers, {values:,} values"
        )


if __name__ == "__main__":
    main()
