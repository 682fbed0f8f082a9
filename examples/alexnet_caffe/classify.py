"""Classify images with AlexNet and Caffe's bvlc_alexnet weights, through netspec's Python API.

    python classify.py --weights bvlc_alexnet.npy [--names imagenet_classes.txt] IMAGE...

1. `netspec.compile` the zoo's AlexNet (specs/alexnet.yaml) with Caffe's LRN constants
   (`lrn_k=1, lrn_alpha=1e-4`: the deployed bvlc_alexnet's, not the paper's k=2);
2. build it and load the `.npy` dict with `netspec.plan_weights` (the pairing, checked) and
   `LoadPlan.apply` (`netspec.load_weights` does both in one call);
3. prepare each image as bvlc_alexnet was trained: Pillow decodes it as RGB and resizes it to
   227x227 (bilinear), the channels are reversed to BGR (Caffe reads images with OpenCV) and
   the ImageNet mean pixel is subtracted from the 0-255 values, B 104.0, G 116.7, R 122.7; no
   division by a standard deviation;
4. run the network (`model(x, train=False)` gives logits: the spec's final softmax row is not
   applied), take the softmax and print the top 5 class indices with their probabilities, and
   their ImageNet names when `--names` gives a file of 1000 lines (one class per line in index
   order; Caffe's synset_words.txt, "n01440764 tench, Tinca tinca", works too).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import netspec

SPEC = Path(__file__).resolve().parent.parent.parent / "specs" / "alexnet.yaml"
CAFFE_MEAN_BGR = np.array([104.00698793, 116.66876762, 122.67891434], dtype=np.float32)
"""ILSVRC 2012's mean pixel (ilsvrc_2012_mean.npy averaged over its 256x256), B, G, R."""


def caffe_input(path: Path, size: tuple[int, int]) -> np.ndarray:
    """float32 (H, W, 3): BGR, 0-255 minus the mean pixel, as bvlc_alexnet expects."""
    height, width = size
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb, dtype=np.float32)
    return pixels[:, :, ::-1] - CAFFE_MEAN_BGR


def read_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            names.append(re.sub(r"^n\d{8}\s+", "", line.strip()))
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files")
    parser.add_argument("--weights", type=Path, required=True, help="bvlc_alexnet.npy")
    parser.add_argument("--names", type=Path, help="ImageNet class names, one per line")
    parser.add_argument("--top", type=int, default=5, help="how many classes to show")
    args = parser.parse_args()

    compiled = netspec.compile(SPEC, lrn_k=1, lrn_alpha=1e-4)
    model = compiled.build(seed=0)
    plan = netspec.plan_weights(compiled, model, args.weights)
    plan.apply()
    print(
        f"loaded {plan.loaded:,} values from {plan.source.description}, paired {plan.pairing} "
        f"({plan.layout} layout)"
    )
    names = read_names(args.names) if args.names else None
    classes = int(compiled.report.output_shape[-1])
    if names is not None and len(names) != classes:
        raise SystemExit(f"error: {args.names} lists {len(names)} names, the network has {classes}")

    height, width, _ = compiled.graph.input_shape
    batch = np.stack([caffe_input(path, (height, width)) for path in args.images])
    logits = model(jnp.asarray(batch), train=False)
    probabilities = np.asarray(jax.nn.softmax(logits.reshape(len(batch), -1), axis=-1))
    for path, row in zip(args.images, probabilities, strict=True):
        print(f"{path}:")
        for rank, index in enumerate(np.argsort(row)[::-1][: args.top], start=1):
            name = f" {names[index]}" if names else ""
            print(f"  {rank}. class {index:>3}{name}  {row[index]:.2%}")


if __name__ == "__main__":
    main()
