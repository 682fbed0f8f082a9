"""The input pipeline on its own, against the train step it feeds (image folder at 224x224).

    python benchmarks/input_pipeline.py [--images 320] [--batch 32] [--workers 0 1 2]
                                        [--models googlenet resnet50] [--steps 3]

Writes a class-per-folder set of JPEG photos (a stand-in for the 5-class flower photos:
500x375, smooth colour fields with texture and noise so they compress like photographs, about
70 KB each), then measures with `netspec.train` code what `netspec train` would run:

- the pipeline: decode, random resized crop (area 0.08-1), resize to 224x224, flip, normalise,
  batched by grain with `workers` threads (and processes), images/s over a whole epoch after a
  warm-up epoch;
- the train step of each model at the same batch (netspec bench: synthetic data, compiled,
  median), images/s.

The pipeline keeps up when its images/s exceeds the step's; on a GPU the step is ~100x faster
than on this CPU, so the ratio that matters there is measured there (`benchmarks/gpu.sh`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import netspec
from netspec.bench import bench
from netspec.train.datasets import load_dataset
from netspec.train.pipeline import Augment, Normalize, Pipeline

PHOTO_SIZE = (500, 375)
"""(width, height) of the written photos, the typical size in the flower-photos set."""
CLASSES = 5


def write_photo_folder(root: Path, count: int, seed: int = 0) -> Path:
    """`count` JPEG photos spread over CLASSES class folders under `root`; returns `root`."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        folder = root / f"class_{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        phase = rng.uniform(0, 2 * np.pi, size=(3, 2))
        freq = rng.uniform(0.005, 0.05, size=(3, 2))
        channels = [
            127 + 80 * np.sin(xs * freq[c, 0] + phase[c, 0]) * np.cos(ys * freq[c, 1] + phase[c, 1])
            for c in range(3)
        ]
        pixels = np.stack(channels, -1) + rng.normal(0, 12, size=(height, width, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"photo_{i:05d}.jpg", quality=90)
    return root


def pipeline_rate(folder: Path, batch: int, workers: int, processes: bool) -> float:
    """Training images per second the pipeline delivers over one epoch (after a warm one)."""
    data = load_dataset(folder, (224, 224, 3), val_fraction=0.0)
    pipeline = Pipeline(
        data.train,
        (224, 224, 3),
        batch,
        train=True,
        augment=Augment(random_resized_crop=(0.08, 1.0), horizontal_flip=True),
        normalize=Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        workers=workers,
        processes=processes,
    )
    for _ in pipeline.epoch(0):
        pass
    start = time.perf_counter()
    images = sum(len(b.labels) for b in pipeline.epoch(1))
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--processes", action="store_true", help="also time worker processes")
    parser.add_argument("--models", nargs="*", default=["googlenet", "resnet50"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_photo_folder(Path(tmp) / "photos", args.images)
        size = sum(f.stat().st_size for f in folder.rglob("*.jpg")) / args.images
        print(
            f"{args.images} JPEGs {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, {size / 1e3:.0f} KB each; "
            f"{os.cpu_count()} CPUs"
        )
        kinds = [(w, False) for w in args.workers]
        if args.processes:
            kinds += [(w, True) for w in args.workers if w > 0]
        for workers, processes in kinds:
            rate = pipeline_rate(folder, args.batch, workers, processes)
            what = f"{workers} worker {'processes' if processes else 'threads'}"
            rows.append((f"pipeline, {what}", rate))
    for model in args.models:
        compiled = netspec.compile(model)
        result = bench(compiled, args.batch, args.steps, warmup=1, dtype=args.dtype)
        rows.append((f"{model} train step, {args.dtype} ({result.device})", result.images_per_sec))

    print(f"\n| what (batch {args.batch}, 224x224) | images/s |\n| --- | --- |")
    for what, rate in rows:
        print(f"| {what} | {rate:,.1f} |")


if __name__ == "__main__":
    main()
