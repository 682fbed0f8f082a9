"""Two photos to classify and, where available, the 1000 ImageNet class names; no download.

- the photos are the two JPEG files scikit-learn ships (`sklearn.datasets.load_sample_images`:
  china.jpg, a temple, and flower.jpg, a flower; 640x427), copied to OUT/;
- the names come from torchvision's ImageNet weight metadata when torchvision is installed
  (the `bench` extra; nothing is downloaded: the list is part of the package), written to
  OUT/imagenet_classes.txt, one per line in class-index order (Caffe's order too).

    python prepare_inputs.py OUT
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from sklearn.datasets import load_sample_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for source in load_sample_images().filenames:
        shutil.copyfile(source, args.out / Path(source).name)
        print(f"wrote {args.out / Path(source).name} (scikit-learn's sample photo)")
    try:
        from torchvision.models import AlexNet_Weights
    except ImportError:
        print("torchvision is not installed: no class names (indices only)")
        return
    names = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
    (args.out / "imagenet_classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'imagenet_classes.txt'} ({len(names)} names, from torchvision)")


if __name__ == "__main__":
    main()
