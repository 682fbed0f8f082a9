"""Write a small flower-photo-style image folder: 5 classes of synthetic "flowers" as JPEG files.

The layout is TensorFlow's flower_photos (one sub-folder per class, same class names), split
into train/ and val/ as `netspec train --data` reads it:

    OUT/train/daisy/daisy_0000.jpg ... OUT/val/tulips/tulips_0003.jpg

Each class is a petal pattern with its own shape and colours (daisy: many white petals around
a small yellow disc; dandelion: a dense yellow pompom; roses: nested red rings; sunflowers:
broad yellow petals around a large brown disc; tulips: a pink cup of three tall petals on a
stem), drawn at a random place, size and angle on a noisy green background. Nothing is
downloaded.

    python make_flowers.py OUT --train 40 --val 10 --size 160
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 25) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def petal(cx: float, cy: float, angle: float, inner: float, outer: float, width: float) -> list:
    """A pointed ellipse from radius `inner` to `outer` along `angle`, as polygon points."""
    points = []
    for t in np.linspace(0.0, math.pi, 12):
        along = inner + (outer - inner) * (1 - math.cos(t)) / 2
        across = width * math.sin(t)
        points.append((along, across))
    points += [(a, -b) for a, b in reversed(points)]
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + a * cos - b * sin, cy + a * sin + b * cos) for a, b in points]


def background(rng: np.random.Generator, size: int) -> Image.Image:
    base = np.array(jitter(rng, (70, 120, 60), 30), dtype=np.float32)
    noise = rng.normal(0.0, 18.0, (size // 8, size // 8, 3)).astype(np.float32)
    small = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    return image.filter(ImageFilter.GaussianBlur(2))


def draw_flower(rng: np.random.Generator, kind: str, size: int) -> Image.Image:
    image = background(rng, size)
    draw = ImageDraw.Draw(image)
    r = size * rng.uniform(0.28, 0.42)
    cx, cy = (size / 2 + rng.uniform(-0.12, 0.12) * size for _ in range(2))
    turn = rng.uniform(0, 2 * math.pi)
    if kind == "daisy":
        count = int(rng.integers(14, 22))
        for i in range(count):
            a = turn + 2 * math.pi * i / count
            draw.polygon(petal(cx, cy, a, r * 0.15, r, r * 0.11), fill=jitter(rng, (245, 245, 240)))
        c = r * 0.22
        draw.ellipse([cx - c, cy - c, cx + c, cy + c], fill=jitter(rng, (240, 200, 30)))
    elif kind == "dandelion":
        for _ in range(int(rng.integers(70, 110))):
            a = rng.uniform(0, 2 * math.pi)
            reach = r * rng.uniform(0.5, 0.9)
            colour = jitter(rng, (250, 215, 20), 20)
            draw.polygon(petal(cx, cy, a, 0, reach, r * 0.04), fill=colour)
        c = r * 0.3
        draw.ellipse([cx - c, cy - c, cx + c, cy + c], fill=jitter(rng, (230, 180, 10)))
    elif kind == "roses":
        shade = rng.uniform(0.8, 1.1)
        for k, frac in enumerate(np.linspace(1.0, 0.15, 7)):
            c = r * 0.8 * frac
            dx, dy = rng.uniform(-0.06, 0.06, 2) * r
            red = (int(200 * shade) - 15 * k, 20 + 4 * k, 40 + 3 * k)
            draw.ellipse(
                [cx - c + dx, cy - c + dy, cx + c + dx, cy + c + dy], fill=jitter(rng, red)
            )
            draw.arc([cx - c, cy - c, cx + c, cy + c], 0, 300, fill=(90, 0, 20), width=2)
    elif kind == "sunflowers":
        count = int(rng.integers(18, 26))
        for i in range(count):
            a = turn + 2 * math.pi * i / count
            colour = jitter(rng, (255, 190, 10), 20)
            draw.polygon(petal(cx, cy, a, r * 0.35, r * 1.05, r * 0.2), fill=colour)
        c = r * 0.45
        draw.ellipse([cx - c, cy - c, cx + c, cy + c], fill=jitter(rng, (90, 50, 20), 15))
        for _ in range(40):
            px, py = rng.uniform(-0.8, 0.8, 2) * c
            if px * px + py * py < (0.8 * c) ** 2:
                draw.point((cx + px, cy + py), fill=(40, 20, 5))
    elif kind == "tulips":
        draw.line(
            [(cx, cy), (cx, size)], fill=jitter(rng, (30, 110, 30), 15), width=max(3, size // 40)
        )
        colour = jitter(rng, (225, 70, 150), 30)
        for a in (-0.35, 0.0, 0.35):
            draw.polygon(
                petal(cx, cy + r * 0.4, -math.pi / 2 + a, 0, r * 1.0, r * 0.3), fill=colour
            )
        draw.chord([cx - r * 0.45, cy - r * 0.1, cx + r * 0.45, cy + r * 0.55], 0, 180, fill=colour)
    else:
        raise ValueError(kind)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (train/ and val/ inside)")
    parser.add_argument("--train", type=int, default=40, help="training images per class")
    parser.add_argument("--val", type=int, default=10, help="validation images per class")
    parser.add_argument("--size", type=int, default=160, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for split, count in (("train", args.train), ("val", args.val)):
        for kind in CLASSES:
            folder = args.out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = draw_flower(rng, kind, args.size)
                image.save(folder / f"{kind}_{i:04d}.jpg", quality=90)
    total = (args.train + args.val) * len(CLASSES)
    print(
        f"wrote {total} generated flower JPEGs ({args.size}x{args.size}) to {args.out}: "
        f"train/ {args.train} and val/ {args.val} per class of {', '.join(CLASSES)}"
    )


if __name__ == "__main__":
    main()
