"""Write a STAND-IN for bvlc_alexnet.npy: the real file's format and shapes, random values.

bvlc_alexnet.npy is Caffe's BVLC AlexNet converted to NumPy by caffe-tensorflow (the file
behind Guerzhoy's "AlexNet implementation + weights in TensorFlow", 233 MB): a pickled dict
from layer name to [weights, biases] in TensorFlow's layout,

    conv1  (11, 11, 3, 96)    (96,)       conv kernels HWIO (height, width, in, out); the
    conv2  (5, 5, 48, 256)    (256,)      grouped layers (conv2, conv4, conv5: 2 groups) hold
    conv3  (3, 3, 256, 384)   (384,)      in/groups input channels
    conv4  (3, 3, 192, 384)   (384,)
    conv5  (3, 3, 192, 256)   (256,)
    fc6    (9216, 4096)       (4096,)     dense (in, out); fc6's rows in H, W, C order of
    fc7    (4096, 4096)       (4096,)     pool5's 6x6x256 output
    fc8    (4096, 1000)       (1000,)

This script writes exactly that, with random values (He-normal kernels, conv1's scaled for
inputs of 0-255 minus the mean, small random biases) so that the example runs without the
download. The classes it gives mean nothing: the weights are NOT trained.

    python standin_bvlc_alexnet.py OUT/bvlc_alexnet.npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LAYERS = {
    "conv1": ((11, 11, 3, 96), (96,)),
    "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)),
    "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)),
    "fc6": ((9216, 4096), (4096,)),
    "fc7": ((4096, 4096), (4096,)),
    "fc8": ((4096, 1000), (1000,)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .npy file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    weights = {}
    for name, (shape, bias) in LAYERS.items():
        fan_in = int(np.prod(shape[:-1]))
        std = np.sqrt(2.0 / fan_in) / (64.0 if name == "conv1" else 1.0)
        kernel = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        weights[name] = [kernel, rng.uniform(-0.01, 0.01, bias).astype(np.float32)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, np.array(weights, dtype=object), allow_pickle=True)
    values = sum(w.size + b.size for w, b in weights.values())
    print(
        f"wrote {args.out}: STAND-IN for bvlc_alexnet.npy, random values (NOT trained) in its "
        f"format: {len(weights)} layers, {values:,} values"
    )


if __name__ == "__main__":
    main()
