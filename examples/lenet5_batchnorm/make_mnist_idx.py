"""Write MNIST-format IDX files made from scikit-learn's 8x8 handwritten digits (no download).

MNIST's four files, gzipped as distributed (netspec reads them plain or .gz):

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

IDX: a big-endian header (magic 0x00000803 for uint8 images of 3 dimensions, 0x00000801 for
uint8 labels, then each dimension as a uint32), then the values. As in MNIST, each digit is
scaled to fit a 20x20 box (here: the 8x8 image resized bilinearly, values 0..16 -> 0..255) and
centred in a 28x28 image, white on black. The 1,797 digits are split per class (seeded) into
the training and test ("t10k") files.

    python make_mnist_idx.py OUT [--train 1497] [--test 300]
"""

from __future__ import annotations

import argparse
import gzip
import struct
from itertools import chain, zip_longest
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def to_mnist(image: np.ndarray) -> np.ndarray:
    """An 8x8 digit (0..16) as a 28x28 uint8 MNIST image: 20x20 digit centred."""
    pixels = Image.fromarray((image * (255.0 / 16.0)).astype(np.float32), mode="F")
    digit = np.asarray(pixels.resize((20, 20), Image.Resampling.BILINEAR))
    canvas = np.zeros((28, 28), dtype=np.uint8)
    canvas[4:24, 4:24] = np.clip(np.rint(digit), 0, 255).astype(np.uint8)
    return canvas


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)  # 0x08: unsigned byte
    header = magic + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write the four files to")
    parser.add_argument("--train", type=int, default=1497, help="training images")
    parser.add_argument("--test", type=int, default=300, help="test (t10k) images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    digits = load_digits()
    if args.train + args.test > len(digits.target):
        raise SystemExit(f"error: scikit-learn has {len(digits.target)} digits in all")
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(digits.target))
    # Round-robin over the classes so that both files hold every digit about equally.
    by_class = [order[digits.target[order] == c] for c in range(10)]
    interleaved = [i for i in chain.from_iterable(zip_longest(*by_class)) if i is not None]
    chosen = np.array(interleaved[: args.train + args.test])
    test, train = chosen[: args.test], chosen[args.test :]
    args.out.mkdir(parents=True, exist_ok=True)
    for prefix, indices in (("train", train), ("t10k", test)):
        images = np.stack([to_mnist(digits.images[i]) for i in indices])
        write_idx(args.out / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(args.out / f"{prefix}-labels-idx1-ubyte.gz", digits.target[indices])
    print(
        f"wrote MNIST IDX files to {args.out}: {len(train)} training and {len(test)} test "
        "28x28 digits (scikit-learn's, upscaled)"
    )


if __name__ == "__main__":
    main()
