"""PyTorch side of the end-to-end benchmark (benchmarks/end_to_end.py): a whole training run as
a PyTorch user writes it, `run(job)` called in a fresh worker process.

- The model: `Inception10` below (the course's Inception10 of specs/inception10.yaml in
  `torch.nn`: Conv2d with bias, BatchNorm2d with Keras' epsilon 1e-3 and momentum 0.99, which
  is torch's momentum 0.01, ReLU) or benchmarks/handwritten_torch.py's GoogLeNet with its two
  auxiliary heads (training mode returns main, aux1, aux2; loss main + 0.3 x each aux).
- `torch.optim.SGD(lr=0.01, momentum=0.9)`, float32, eager.
- The data: `torch.utils.data.DataLoader(num_workers=W, persistent_workers=True)` over a
  Dataset with torchvision transforms: CIFAR, `RandomCrop(32, padding=4)`,
  `RandomHorizontalFlip()`; photos (`torchvision.datasets.ImageFolder`),
  `RandomResizedCrop(224, scale=(0.08, 1.0))`, `RandomHorizontalFlip()`; then `ToTensor()`,
  `Normalize(mean, std)`. Validation: no augmentation (photos `Resize((224, 224))`, squashed
  as netspec does). Training shuffles and drops the last partial batch.
- Each epoch: `model.train()` and the loop, `model.eval()` and the validation loop under
  `torch.no_grad()`, then `torch.save` of the model's and the optimizer's state dicts.

Timing (all synchronous on a CPU): epoch 1 runs from the start of `run` (after the imports),
so it holds building the model, the loaders and starting their workers. Per epoch: the time
spent in `next()` on the loader (data wait), in forward, backward and the update (step), the
validation loop, the save.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_data
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

# --- Inception10 -----------------------------------------------------------------------------


class ConvBNReLU(nn.Sequential):
    """Conv2d ('same' padding, bias), BatchNorm2d (Keras' defaults), ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU(inplace=True),
        )


class InceptionBlock(nn.Module):
    """Four branches of `ch` channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1; the
    stride on the convolutions that read the input."""

    def __init__(self, cin: int, ch: int, stride: int = 1) -> None:
        super().__init__()
        self.c1 = ConvBNReLU(cin, ch, 1, stride)
        self.c2 = nn.Sequential(ConvBNReLU(cin, ch, 1, stride), ConvBNReLU(ch, ch, 3))
        self.c3 = nn.Sequential(ConvBNReLU(cin, ch, 1, stride), ConvBNReLU(ch, ch, 5))
        self.c4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), ConvBNReLU(cin, ch, 1, stride))
        self.out_channels = 4 * ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.c1(x), self.c2(x), self.c3(x), self.c4(x)), 1)


class Inception10(nn.Module):
    """Inception10(num_blocks=2, num_classes=10) on 3x32x32: 16-channel stem, blocks of two
    modules (the first with stride 2), channels doubling per block; returns logits."""

    def __init__(self, num_blocks: int = 2, num_classes: int = 10, init_ch: int = 16) -> None:
        super().__init__()
        self.c1 = ConvBNReLU(3, init_ch)
        blocks, cin, ch = [], init_ch, init_ch
        for _ in range(num_blocks):
            for layer in range(2):
                block = InceptionBlock(cin, ch, stride=2 if layer == 0 else 1)
                blocks.append(block)
                cin = block.out_channels
            ch *= 2
        self.blocks = nn.Sequential(*blocks)
        self.f1 = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.c1(x))
        return self.f1(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(workload: str, classes: int) -> nn.Module:
    if workload == "cifar":
        return Inception10(num_classes=classes)
    from handwritten_torch import GoogLeNet

    return GoogLeNet(num_classes=classes)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- data ------------------------------------------------------------------------------------


class ArrayImages(Dataset):
    """uint8 (N, H, W, 3) images in memory, each a PIL image through `transform`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def loaders(job: dict) -> tuple[DataLoader, DataLoader]:
    if job["workload"] == "cifar":
        (train_x, train_y), (val_x, val_y) = e2e_data.read_cifar(Path(job["data"]))
        normalize = transforms.Normalize(e2e_data.CIFAR_MEAN, e2e_data.CIFAR_STD)
        augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
        train_set: Dataset = ArrayImages(
            train_x, train_y, transforms.Compose([*augment, transforms.ToTensor(), normalize])
        )
        val_set: Dataset = ArrayImages(
            val_x, val_y, transforms.Compose([transforms.ToTensor(), normalize])
        )
    else:
        root = Path(job["data"])
        normalize = transforms.Normalize(e2e_data.IMAGENET_MEAN, e2e_data.IMAGENET_STD)
        augment = [
            transforms.RandomResizedCrop(224, scale=(0.08, 1.0)),
            transforms.RandomHorizontalFlip(),
        ]
        train_set = datasets.ImageFolder(
            str(root / "train"), transforms.Compose([*augment, transforms.ToTensor(), normalize])
        )
        val_set = datasets.ImageFolder(
            str(root / "val"),
            transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), normalize]),
        )
    workers = job["workers"]
    options = {"num_workers": workers, "persistent_workers": workers > 0}
    generator = torch.Generator().manual_seed(job["seed"])
    train = DataLoader(
        train_set,
        job["batch"],
        shuffle=True,
        drop_last=True,
        generator=generator,
        **options,
    )
    val = DataLoader(val_set, job["batch"], shuffle=False, **options)
    return train, val


# --- the run ---------------------------------------------------------------------------------


def loss_of(outputs: Any, labels: torch.Tensor, aux_weight: float) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return F.cross_entropy(outputs, labels)
    main, *aux = outputs
    loss = F.cross_entropy(main, labels)
    for logits in aux:
        loss = loss + aux_weight * F.cross_entropy(logits, labels)
    return loss


def run(job: dict) -> dict[str, Any]:
    """Train as `job` says (see end_to_end.py `make_job`); returns params and epoch records."""
    start = time.perf_counter()
    torch.manual_seed(job["seed"])
    # a GPU when there is one (channels-last, as PyTorch recommends for convolutions there)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = build(job["workload"], job["classes"]).to(device, memory_format=layout)
    params = count(model)
    if params != job["expected_params"]:
        raise RuntimeError(
            f"torch model has {params:,} parameters, netspec {job['expected_params']:,}"
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=job["lr"], momentum=job["momentum"])
    train, val = loaders(job)
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    records = []
    last_end = start
    for epoch in range(1, job["epochs"] + 1):
        began = time.perf_counter()
        model.train()
        wait = step = loss_sum = 0.0
        correct = seen = 0
        fetch = time.perf_counter()
        batches = iter(train)  # (the first epoch starts the loader's worker processes)
        while True:
            try:
                images, labels = next(batches)
            except StopIteration:
                break
            stepped = time.perf_counter()
            wait += stepped - fetch
            images = images.to(device, non_blocking=True, memory_format=layout)
            labels = labels.to(device, non_blocking=True)
            outputs = model(images)
            loss = loss_of(outputs, labels, job["aux_weight"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            main = outputs if isinstance(outputs, torch.Tensor) else outputs[0]
            loss_sum += loss.item() * len(labels)
            correct += int((main.argmax(1) == labels).sum())
            seen += len(labels)
            fetch = time.perf_counter()
            step += fetch - stepped
        trained = time.perf_counter()

        model.eval()
        val_correct = val_seen = 0
        with torch.no_grad():
            for images, labels in val:
                images, labels = images.to(device, memory_format=layout), labels.to(device)
                val_correct += int((model(images).argmax(1) == labels).sum())
                val_seen += len(labels)
        evaluated = time.perf_counter()

        state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
        torch.save(state, out / f"epoch_{epoch:02d}.pt")
        now = time.perf_counter()
        records.append(
            {
                "epoch": epoch,
                "seconds": now - last_end,
                "train_s": trained - began,
                "images": seen,
                "images_per_sec": seen / (trained - began),
                "data_wait_s": wait,
                "step_s": step,
                "eval_s": evaluated - trained,
                "checkpoint_s": now - evaluated,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "val_acc": val_correct / max(val_seen, 1),
            }
        )
        last_end = now
    threads = torch.get_num_threads()
    return {
        "label": f"torch {torch.__version__} eager, "
        + (torch.cuda.get_device_name() if device.type == "cuda" else f"{threads} threads"),
        "params": params,
        "epochs": records,
    }
