"""Write a small image folder of four texture classes as PNG files, one sub-folder per class.

    OUT/checks/checks_000.png ... OUT/stripes/stripes_011.png

(no train/ and val/: `netspec train` splits it 9:1 per class, seeded). Classes: checks (a
checkerboard), dots (a grid of discs), rings (concentric circles), stripes (parallel bands),
each with random colours, scale, angle or centre and noise. Nothing is downloaded.

    python make_textures.py OUT --per-class 50 --size 96
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("checks", "dots", "rings", "stripes")


def texture(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    period = rng.uniform(0.12, 0.25)
    if kind == "checks":
        mask = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    elif kind == "dots":
        du, dv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
        mask = du**2 + dv**2 < 0.09
    elif kind == "rings":
        cx, cy = rng.uniform(0.3, 0.7, 2)
        mask = (np.hypot(x - cx, y - cy) / (period / 2)) % 2 < 1
    elif kind == "stripes":
        mask = (u / (period / 2)) % 2 < 1
    else:
        raise ValueError(kind)
    colours = rng.integers(0, 256, (2, 3)).astype(np.float32)
    while np.abs(colours[0] - colours[1]).sum() < 150:  # keep the two colours apart
        colours = rng.integers(0, 256, (2, 3)).astype(np.float32)
    pixels = np.where(mask[..., None], colours[0], colours[1])
    pixels += rng.normal(0, 12, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per class)")
    parser.add_argument("--per-class", type=int, default=50, help="images per class")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for kind in CLASSES:
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(args.per_class):
            Image.fromarray(texture(rng, kind, args.size)).save(folder / f"{kind}_{i:03d}.png")
    print(
        f"wrote {args.per_class * len(CLASSES)} generated texture PNGs ({args.size}x{args.size}) "
        f"to {args.out}: {args.per_class} per class of {', '.join(CLASSES)}"
    )


if __name__ == "__main__":
    main()
