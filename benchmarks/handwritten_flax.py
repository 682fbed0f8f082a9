"""Hand-written Flax NNX models, as an expert would write them, to compare netspec against.

Written with plain `nnx.Conv`, `nnx.BatchNorm`, `nnx.Linear` and `jax.nn` (no netspec code),
with the same architecture and parameter count as the zoo specs `lenet5` and
`resnet18_cifar`. Each takes NHWC images and `train`, and returns logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class LeNet5(nnx.Module):
    """LeNet-5 on 32x32x1: tanh, 2x2 average pooling, 61,706 parameters."""

    def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs) -> None:
        self.c1 = nnx.Conv(1, 6, (5, 5), padding="VALID", rngs=rngs)
        self.c3 = nnx.Conv(6, 16, (5, 5), padding="VALID", rngs=rngs)
        self.c5 = nnx.Conv(16, 120, (5, 5), padding="VALID", rngs=rngs)
        self.f6 = nnx.Linear(120, 84, rngs=rngs)
        self.output = nnx.Linear(84, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        pool = lambda y: nnx.avg_pool(y, (2, 2), (2, 2))  # noqa: E731
        x = pool(jnp.tanh(self.c1(x)))
        x = pool(jnp.tanh(self.c3(x)))
        x = jnp.tanh(self.c5(x)).reshape(x.shape[0], -1)
        return self.output(jnp.tanh(self.f6(x)))


class BasicBlock(nnx.Module):
    """Two 3x3 conv-BN layers and a shortcut, projected when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(
            cin, cout, (3, 3), (stride, stride), padding=1, use_bias=False, rngs=rngs
        )
        self.bn1 = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), padding=1, use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.project = stride != 1 or cin != cout
        if self.project:
            self.short_conv = nnx.Conv(
                cin, cout, (1, 1), (stride, stride), use_bias=False, rngs=rngs
            )
            self.short_bn = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        ura = not train
        y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=ura))
        y = self.bn2(self.conv2(y), use_running_average=ura)
        shortcut = self.short_bn(self.short_conv(x), use_running_average=ura) if self.project else x
        return jax.nn.relu(y + shortcut)


class ResNet18Cifar(nnx.Module):
    """ResNet-18 for 32x32 CIFAR: 3x3 stem, no max pool, [2, 2, 2, 2] basic blocks."""

    def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(3, 64, (3, 3), padding=1, use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(64, momentum=0.9, rngs=rngs)
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [
                BasicBlock(cin, cout, stride, rngs=rngs),
                BasicBlock(cout, cout, 1, rngs=rngs),
            ]
            cin = cout
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(512, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        for block in self.blocks:
            x = block(x, train)
        return self.fc(x.mean(axis=(1, 2)))


MODELS = {"lenet5": LeNet5, "resnet18_cifar": ResNet18Cifar}
