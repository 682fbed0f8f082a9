"""Write a small CIFAR-10-style data set in the real format: the python version's pickled batches.

    OUT/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

as in https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 python version"): each batch is a
pickled dict (protocol 2, as the original Python 2 files; byte-string keys) with
b"batch_label", b"labels" (a list of N ints 0..9), b"data" (uint8 N x 3072: each row a 32x32
image, the 1024 red values first, then green, then blue, each row-major) and b"filenames";
batches.meta holds b"label_names" (the ten class names), b"num_cases_per_batch" and b"num_vis".

The images are generated, one drawing per class (an aeroplane against the sky, a car on a road,
a ship on the sea, ...), each at a random place, size and colour shade, on varying backgrounds
with clutter and noise, so that the networks can learn them in a few epochs. Nothing is
downloaded.

    python make_cifar10.py OUT --per-batch 1000 --test 1000
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SKY, GRASS, ROAD, SEA = (120, 170, 230), (70, 130, 50), (110, 110, 110), (30, 70, 150)


def shade(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 30) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def draw(rng: np.random.Generator, label: int) -> np.ndarray:
    """One 32x32 RGB image of class `label`."""
    name = NAMES[label]
    ground = {"airplane": SKY, "bird": SKY, "ship": SEA, "automobile": ROAD, "truck": ROAD}
    if rng.random() < 0.3:  # not always the class's usual surroundings
        ground = {name: (SKY, GRASS, ROAD, SEA)[rng.integers(4)]}
    image = Image.new("RGB", (32, 32), shade(rng, ground.get(name, GRASS), 50))
    d = ImageDraw.Draw(image)
    for _ in range(rng.integers(0, 3)):  # clutter
        cx, cy, r = rng.uniform(0, 32), rng.uniform(0, 32), rng.uniform(2, 6)
        d.ellipse(
            [cx - r, cy - r, cx + r, cy + r], fill=tuple(int(c) for c in rng.integers(0, 256, 3))
        )
    x, y = (int(v) for v in rng.integers(-5, 6, 2))
    s = rng.uniform(0.7, 1.2)

    def pts(*xy: float) -> list[float]:
        """Points (x0, y0, x1, y1, ...) of a 32x32 drawing, moved by (x, y) and scaled by s."""
        return [16 + (v - 16) * s + (x if i % 2 == 0 else y) for i, v in enumerate(xy)]

    if name == "airplane":
        grey = shade(rng, (200, 200, 205))
        d.rectangle(pts(4, 14, 28, 18), fill=grey)
        d.polygon(pts(10, 16, 22, 5, 24, 16, 22, 27), fill=grey)
        d.polygon(pts(24, 16, 28, 10, 29, 16), fill=grey)
    elif name == "automobile":
        d.rectangle(pts(4, 12, 28, 22), fill=shade(rng, (200, 30, 30)))
        d.rectangle(pts(9, 7, 22, 13), fill=shade(rng, (170, 210, 240)))
        for cx in (9, 23):
            d.ellipse(pts(cx - 3, 19, cx + 3, 25), fill=(20, 20, 20))
    elif name == "bird":
        d.ellipse(pts(9, 12, 23, 20), fill=shade(rng, (120, 80, 40)))
        d.ellipse(pts(20, 9, 26, 15), fill=shade(rng, (120, 80, 40)))
        d.polygon(pts(26, 12, 30, 13, 26, 14), fill=(240, 180, 0))
    elif name == "cat":
        fur = shade(rng, (230, 140, 50), 40)
        d.ellipse(pts(7, 9, 25, 27), fill=fur)
        d.polygon(pts(8, 14, 10, 3, 16, 10), fill=fur)
        d.polygon(pts(24, 14, 22, 3, 16, 10), fill=fur)
        for cx in (12, 20):
            d.ellipse(pts(cx - 1.5, 15, cx + 1.5, 18), fill=(40, 160, 40))
    elif name == "deer":
        brown = shade(rng, (160, 100, 50))
        d.rectangle(pts(8, 12, 24, 20), fill=brown)
        for lx in (9, 12, 20, 23):
            d.line(pts(lx, 20, lx, 29), fill=brown, width=1)
        d.line(pts(24, 12, 27, 4), fill=(90, 60, 30), width=1)
        d.line(pts(27, 4, 30, 2), fill=(90, 60, 30), width=1)
    elif name == "dog":
        d.ellipse(pts(6, 6, 26, 26), fill=shade(rng, (110, 70, 40), 40))
        for cx in (6, 26):
            d.ellipse(pts(cx - 4, 8, cx + 4, 20), fill=shade(rng, (60, 40, 20)))
        d.ellipse(pts(14, 16, 18, 20), fill=(10, 10, 10))
    elif name == "frog":
        d.ellipse(pts(6, 12, 26, 26), fill=shade(rng, (60, 200, 60), 40))
        for cx in (10, 22):
            d.ellipse(pts(cx - 3, 9, cx + 3, 15), fill=(240, 240, 60))
    elif name == "horse":
        dark = shade(rng, (80, 50, 30))
        d.ellipse(pts(5, 10, 25, 20), fill=dark)
        d.polygon(pts(20, 13, 25, 3, 30, 5, 29, 8, 26, 7, 24, 15), fill=dark)
        for lx in (7, 10, 19, 22):
            d.rectangle(pts(lx, 18, lx + 1, 30), fill=dark)
    elif name == "ship":
        d.rectangle([0, 20, 31, 31], fill=shade(rng, (20, 50, 120)))
        d.polygon(pts(3, 16, 29, 16, 24, 23, 8, 23), fill=shade(rng, (235, 235, 235)))
        d.rectangle(pts(12, 9, 19, 16), fill=shade(rng, (180, 40, 40)))
    elif name == "truck":
        d.rectangle(pts(2, 6, 20, 22), fill=shade(rng, (230, 200, 40)))
        d.rectangle(pts(20, 11, 29, 22), fill=shade(rng, (40, 70, 180)))
        for cx in (7, 15, 25):
            d.ellipse(pts(cx - 3, 20, cx + 3, 26), fill=(20, 20, 20))
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-24, 25, (32, 32, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def batch(rng: np.random.Generator, count: int, label: str, first: int) -> dict:
    labels = [int(i % 10) for i in rng.permutation(count)]
    images = np.stack([draw(rng, c) for c in labels])
    return {
        b"batch_label": label.encode(),
        b"labels": labels,
        b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072),  # channel-major rows
        b"filenames": [
            f"generated_{NAMES[c]}_{first + i:05d}.png".encode() for i, c in enumerate(labels)
        ],
    }


def save(path: Path, value: dict) -> None:
    with path.open("wb") as file:
        pickle.dump(value, file, protocol=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="cifar-10-batches-py/ is written in it")
    parser.add_argument("--per-batch", type=int, default=1000, help="images per data batch (5)")
    parser.add_argument("--test", type=int, default=1000, help="images in test_batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    folder = args.out / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        label = f"training batch {i} of 5"
        save(
            folder / f"data_batch_{i}", batch(rng, args.per_batch, label, (i - 1) * args.per_batch)
        )
    save(folder / "test_batch", batch(rng, args.test, "testing batch 1 of 1", 0))
    meta = {
        b"num_cases_per_batch": args.per_batch,
        b"label_names": [name.encode() for name in NAMES],
        b"num_vis": 3072,
    }
    save(folder / "batches.meta", meta)
    print(
        f"wrote {folder}: generated CIFAR-10-format batches, 5 x {args.per_batch} training and "
        f"{args.test} test images of 32x32"
    )


if __name__ == "__main__":
    main()
