"""Hand-written PyTorch models and a timed train step, to compare netspec against.

The four zoo models `lenet5`, `resnet18_cifar`, `googlenet` and `resnet50`, written as an
expert would with plain `torch.nn` layers (no netspec code, no torchvision), with the same
architecture, output shapes and trainable-parameter counts as the specs. Each takes NCHW images
and returns logits; GoogLeNet in training mode returns `(main, aux1, aux2)`.

`make_runner` wraps one of them in the benchmark's train step (forward in training mode, float32
softmax cross-entropy plus 0.3 x each auxiliary loss, backward, SGD lr 0.01 momentum 0.9) on
fixed synthetic data kept on the device:

    runner = make_runner("resnet18_cifar", 64, "bfloat16", compiled=True)
    seconds_per_step = runner.run(10)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

AUX_WEIGHT = 0.3  # GoogLeNet's auxiliary-classifier loss weight (Szegedy et al., Section 5)
COMPILE_LIMIT_S = 600.0  # a first step slower than this counts as "compiling did not work"


# --------------------------------------------------------------------------------------------
# LeNet-5


class LeNet5(nn.Module):
    """LeNet-5 on 32x32x1: valid 5x5 convs, tanh, 2x2 average pools, 61,706 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(torch.tanh(self.c1(x)))  # 28x28x6 -> 14x14x6
        x = self.s4(torch.tanh(self.c3(x)))  # 10x10x16 -> 5x5x16
        x = torch.flatten(torch.tanh(self.c5(x)), 1)  # 1x1x120 -> 120
        return self.output(torch.tanh(self.f6(x)))


# --------------------------------------------------------------------------------------------
# ResNets


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """A bias-free convolution with 'same'-style padding, then batch norm."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut, projected (1x1 conv + BN) when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3)
        self.relu = nn.ReLU(inplace=True)
        project = stride != 1 or cin != cout
        self.shortcut = conv_bn(cin, cout, 1, stride) if project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.relu(self.conv1(x)))
        return self.relu(y + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """ResNet-18 for 32x32 CIFAR: 3x3 stem, no max pool, [2, 2, 2, 2] basic blocks."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 64, 3), nn.ReLU(inplace=True))  # 32x32x64
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)  # 32x32x64, 16x16x128, 8x8x256, 4x4x512
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 expand by 4."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, project: bool = False) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = conv_bn(cin, width, 1)
        self.conv2 = conv_bn(width, width, 3, stride)
        self.conv3 = conv_bn(width, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = conv_bn(cin, cout, 1, stride) if project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv1(x))
        y = self.relu(self.conv2(y))
        return self.relu(self.conv3(y) + self.shortcut(x))


class ResNet50(nn.Module):
    """ResNet-50 on 224x224x3: bottlenecks [3, 4, 6, 3], 25,557,032 parameters."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn(3, 64, 7, 2),  # 112x112x64
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),  # 56x56x64 (floor rounding)
        )
        stages, cin = [], 64
        for width, depth, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(depth):
                stages.append(Bottleneck(cin, width, stride if i == 0 else 1, project=i == 0))
                cin = width * Bottleneck.expansion
        self.stages = nn.Sequential(*stages)  # 56x56x256, 28x28x512, 14x14x1024, 7x7x2048
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


# --------------------------------------------------------------------------------------------
# GoogLeNet


def conv_relu(
    cin: int, cout: int, kernel: int, stride: int = 1, padding: int = -1
) -> nn.Sequential:
    """A convolution with bias ('same' padding unless given) and ReLU."""
    pad = kernel // 2 if padding < 0 else padding
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad), nn.ReLU(inplace=True))


class LRN(nn.Module):
    """Caffe's across-channel LRN, `x / (k + alpha/size * sum of x^2 over size channels)^beta`,
    computed in float32 under mixed precision (as netspec's LRN does)."""

    def __init__(
        self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
    ) -> None:
        super().__init__()
        self.norm = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.float()).to(x.dtype)


class Inception(nn.Module):
    """Figure 2(b): concat of 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max pool -> 1x1 branches."""

    def __init__(
        self, cin: int, n1x1: int, n3x3red: int, n3x3: int, n5x5red: int, n5x5: int, proj: int
    ) -> None:
        super().__init__()
        self.b1x1 = conv_relu(cin, n1x1, 1)
        self.b3x3 = nn.Sequential(conv_relu(cin, n3x3red, 1), conv_relu(n3x3red, n3x3, 3))
        self.b5x5 = nn.Sequential(conv_relu(cin, n5x5red, 1), conv_relu(n5x5red, n5x5, 5))
        self.pool_proj = nn.Sequential(
            nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), conv_relu(cin, proj, 1)
        )
        self.out_channels = n1x1 + n3x3 + n5x5 + proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.b1x1(x), self.b3x3(x), self.b5x5(x), self.pool_proj(x))
        return torch.cat(branches, 1)


class AuxClassifier(nn.Sequential):
    """Section 5's side classifier on a 14x14 map: 5x5/3 avg pool, 1x1 conv, two dense layers."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__(
            nn.AvgPool2d(5, 3),  # 14x14 -> 4x4
            *conv_relu(cin, 128, 1),
            nn.Flatten(),  # 4*4*128 = 2048 (channel-major, where netspec's NHWC is channel-minor)
            nn.Linear(2048, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.7),
            nn.Linear(1024, num_classes),
        )


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) on 224x224x3 as the Caffe model: ceil-mode pools, LRN after pool1
    and conv2, two auxiliary heads (training only); 13,378,280 parameters with them."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.stem = nn.Sequential(
            conv_relu(3, 64, 7, 2, padding=3),  # 112x112x64
            pool(),  # 56x56x64
            LRN(),
            conv_relu(64, 64, 1),
            conv_relu(64, 192, 3),  # 56x56x192
            LRN(),
            pool(),  # 28x28x192
        )
        self.inception_3a = Inception(192, 64, 96, 128, 16, 32, 32)  # 28x28x256
        self.inception_3b = Inception(256, 128, 128, 192, 32, 96, 64)  # 28x28x480
        self.pool3 = pool()  # 14x14x480
        self.inception_4a = Inception(480, 192, 96, 208, 16, 48, 64)  # 14x14x512
        self.aux1 = AuxClassifier(512, num_classes)
        self.inception_4b = Inception(512, 160, 112, 224, 24, 64, 64)  # 14x14x512
        self.inception_4c = Inception(512, 128, 128, 256, 24, 64, 64)  # 14x14x512
        self.inception_4d = Inception(512, 112, 144, 288, 32, 64, 64)  # 14x14x528
        self.aux2 = AuxClassifier(528, num_classes)
        self.inception_4e = Inception(528, 256, 160, 320, 32, 128, 128)  # 14x14x832
        self.pool4 = pool()  # 7x7x832
        self.inception_5a = Inception(832, 256, 160, 320, 32, 128, 128)  # 7x7x832
        self.inception_5b = Inception(832, 384, 192, 384, 48, 128, 128)  # 7x7x1024
        self.pool5 = nn.AvgPool2d(7, 1)  # 1x1x1024
        self.dropout = nn.Dropout(0.4)
        self.linear = nn.Linear(1024, num_classes)

    def forward(
        self, x: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool3(self.inception_3b(self.inception_3a(self.stem(x))))
        x = self.inception_4a(x)
        aux1 = self.aux1(x) if self.training else None
        x = self.inception_4d(self.inception_4c(self.inception_4b(x)))
        aux2 = self.aux2(x) if self.training else None
        x = self.pool4(self.inception_4e(x))
        x = self.pool5(self.inception_5b(self.inception_5a(x)))
        logits = self.linear(self.dropout(torch.flatten(x, 1)))
        if aux1 is None or aux2 is None:
            return logits
        return logits, aux1, aux2


# --------------------------------------------------------------------------------------------
# Runner

# name -> (constructor, input (C, H, W), classes)
MODELS: dict[str, tuple[Callable[[int], nn.Module], tuple[int, int, int], int]] = {
    "lenet5": (LeNet5, (1, 32, 32), 10),
    "resnet18_cifar": (ResNet18Cifar, (3, 32, 32), 10),
    "googlenet": (GoogLeNet, (3, 224, 224), 1000),
    "resnet50": (ResNet50, (3, 224, 224), 1000),
}


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def softmax_loss(
    outputs: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor
) -> torch.Tensor:
    """Mean softmax cross-entropy in float32, plus AUX_WEIGHT x each auxiliary head's loss."""
    if isinstance(outputs, torch.Tensor):
        return F.cross_entropy(outputs.float(), labels)
    main, *aux = outputs
    loss = F.cross_entropy(main.float(), labels)
    for logits in aux:
        loss = loss + AUX_WEIGHT * F.cross_entropy(logits.float(), labels)
    return loss


class Runner:
    """One model's train step on fixed synthetic data; see `make_runner`."""

    label: str
    params: int
    compile_s: float

    def __init__(
        self,
        model: str,
        batch: int,
        dtype: str = "float32",
        *,
        compiled: bool = False,
        channels_last: bool | None = None,
        device: str | None = None,
        sgd_impl: str | None = None,
        compile_mode: str | None = None,
        seed: int = 0,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODELS)}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
            # float32 as JAX computes it on a GPU by default: TF32 tensor cores for matmuls
            # and convolutions.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.channels_last = cuda if channels_last is None else channels_last
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.amp = dtype == "bfloat16"

        build, (c, h, w), classes = MODELS[model]
        torch.manual_seed(seed)
        self.model = build(classes).to(self.device, memory_format=fmt).train()
        self.params = count_params(self.model)

        generator = torch.Generator().manual_seed(seed)
        images = torch.randn((batch, h, w, c), generator=generator).permute(0, 3, 1, 2)
        self.images = images.to(self.device).contiguous(memory_format=fmt)  # NHWC data, as NCHW
        self.labels = torch.randint(0, classes, (batch,), generator=generator).to(self.device)

        # CUDA: one fused kernel for the update in eager mode; under torch.compile the foreach
        # form, which inductor fuses itself. CPU: the plain per-parameter loop (torch's default).
        self.sgd_impl = sgd_impl or (("foreach" if compiled else "fused") if cuda else "for-loop")
        impls = {
            "fused": {"fused": True},
            "foreach": {"foreach": True},
            "for-loop": {"foreach": False},
        }
        if self.sgd_impl not in impls:
            raise ValueError(f"sgd_impl must be one of {sorted(impls)}, got {self.sgd_impl!r}")
        impl = impls[self.sgd_impl]
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, **impl)
        # Momentum buffers start at zero: the first update (0.9 * 0 + grad) is the one SGD makes
        # when it creates them, and every step then takes the same path (no recompilation).
        for p in self.model.parameters():
            self.optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)

        self.label = "torch eager"
        self._step: Callable[[], torch.Tensor] = self._train_step
        start = time.perf_counter()
        try:
            if compiled:
                # The whole step: dynamo breaks the graph at backward() (forward + loss compile
                # with their AOT backward) and around the SGD update, which compiles on its own.
                self.label = "torch.compile" + (f" ({compile_mode})" if compile_mode else "")
                self._step = torch.compile(self._train_step, mode=compile_mode)
            self._step()
            self._sync()
        except Exception as error:
            if not compiled:
                raise
            raise RuntimeError(
                f"torch.compile failed on {model} ({dtype}): {type(error).__name__}: {error}"
            ) from error
        self.compile_s = time.perf_counter() - start
        if compiled and self.compile_s > COMPILE_LIMIT_S:
            raise RuntimeError(
                f"torch.compile of {model} ({dtype}) took {self.compile_s:.0f} s on its first "
                f"step, over the {COMPILE_LIMIT_S:.0f} s limit"
            )

    def _train_step(self) -> torch.Tensor:
        """Forward (autocast to bf16 if asked), loss, backward, SGD update; returns the loss."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = softmax_loss(self.model(self.images), self.labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step(self) -> torch.Tensor:
        """One train step; returns the loss (computed before the update) without waiting."""
        return self._step()

    def run(self, steps: int) -> float:
        """Run `steps` train steps; return seconds per step; wait for the device at the end only."""
        start = time.perf_counter()
        for _ in range(steps):
            self._step()
        self._sync()
        return (time.perf_counter() - start) / steps


def make_runner(model: str, batch: int, dtype: str = "float32", **options) -> Runner:
    """Build `model` (fixed seed), its data and SGD, and time the first step as `compile_s`.

    Options: `compiled` (torch.compile the whole train step; label "torch.compile", else
    "torch eager"), `channels_last` (default: on CUDA only), `device` (default "cuda" if
    available, else "cpu"), `sgd_impl` ("fused", "foreach" or "for-loop"; default fused on CUDA
    eager, foreach under torch.compile on CUDA, for-loop on CPU), `compile_mode` (torch.compile's
    `mode`), `seed`. Raises RuntimeError if torch.compile fails or its first step takes longer
    than COMPILE_LIMIT_S.
    """
    return Runner(model, batch, dtype, **options)
