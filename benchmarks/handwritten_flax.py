"""Hand-written Flax NNX models, as an expert would write them, to compare netspec against.

Written with plain `nnx.Conv`, `nnx.BatchNorm`, `nnx.Linear`, `nnx.Dropout`, `jax.lax` pooling
and `jax.nn` (no netspec code), with the same architecture and parameter count as the zoo specs
`lenet5`, `resnet18_cifar`, `googlenet` and `resnet50`. Each takes NHWC images and `train`,
and returns logits (GoogLeNet in training: a dict of its main and two auxiliary heads' logits).

Every model takes `dtype` (compute) and `param_dtype` (storage), passed to every layer:
`dtype=jnp.bfloat16, param_dtype=jnp.float32` computes in bfloat16 on float32 parameters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike


class LeNet5(nnx.Module):
    """LeNet-5 on 32x32x1: tanh, 2x2 average pooling, 61,706 parameters."""

    def __init__(
        self,
        num_classes: int = 10,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.c1 = nnx.Conv(1, 6, (5, 5), padding="VALID", **kw)
        self.c3 = nnx.Conv(6, 16, (5, 5), padding="VALID", **kw)
        self.c5 = nnx.Conv(16, 120, (5, 5), padding="VALID", **kw)
        self.f6 = nnx.Linear(120, 84, **kw)
        self.output = nnx.Linear(84, num_classes, **kw)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """`(B, 32, 32, 1)` -> `(B, num_classes)`."""
        pool = lambda y: avg_pool(y, 2, 2)  # noqa: E731
        x = pool(jnp.tanh(self.c1(x)))
        x = pool(jnp.tanh(self.c3(x)))
        x = jnp.tanh(self.c5(x)).reshape(x.shape[0], -1)
        return self.output(jnp.tanh(self.f6(x)))


class BasicBlock(nnx.Module):
    """Two 3x3 conv-BN layers and a shortcut, projected when the shape changes."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = nnx.Conv(cin, cout, (3, 3), (stride, stride), padding=1, use_bias=False, **kw)
        self.bn1 = nnx.BatchNorm(cout, momentum=0.9, **kw)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), padding=1, use_bias=False, **kw)
        self.bn2 = nnx.BatchNorm(cout, momentum=0.9, **kw)
        self.project = stride != 1 or cin != cout
        if self.project:
            self.short_conv = nnx.Conv(cin, cout, (1, 1), (stride, stride), use_bias=False, **kw)
            self.short_bn = nnx.BatchNorm(cout, momentum=0.9, **kw)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """`(B, H, W, cin)` -> `(B, H / stride, W / stride, cout)`."""
        ura = not train
        y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=ura))
        y = self.bn2(self.conv2(y), use_running_average=ura)
        shortcut = self.short_bn(self.short_conv(x), use_running_average=ura) if self.project else x
        return jax.nn.relu(y + shortcut)


class ResNet18Cifar(nnx.Module):
    """ResNet-18 for 32x32 CIFAR: 3x3 stem, no max pool, [2, 2, 2, 2] basic blocks."""

    def __init__(
        self,
        num_classes: int = 10,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = nnx.Conv(3, 64, (3, 3), padding=1, use_bias=False, **kw)
        self.bn1 = nnx.BatchNorm(64, momentum=0.9, **kw)
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride, **kw), BasicBlock(cout, cout, 1, **kw)]
            cin = cout
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(512, num_classes, **kw)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """`(B, 32, 32, 3)` -> `(B, num_classes)`."""
        x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        for block in self.blocks:
            x = block(x, train)
        return self.fc(x.mean(axis=(1, 2)))


# Pooling and normalisation helpers (NHWC). Sums of half-precision values run in float32.


def _wide(x: jax.Array) -> jax.Array:
    """`x` in float32 if it is a narrower float (bfloat16, float16), else unchanged."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def avg_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    """Unpadded average pooling, `(B, H, W, C)` -> `(B, (H - window) // stride + 1, ..., C)`."""
    y = nnx.avg_pool(_wide(x), (window, window), (stride, stride))
    return y.astype(x.dtype)


def max_pool(x: jax.Array, window: int, stride: int, pad: int = 0, ceil: bool = False) -> jax.Array:
    """Max pooling with `pad` pixels of -inf each side; `ceil` rounds the output size up as
    Caffe does (a last partial window is kept unless it would start in the padding), padding
    the high side with extra -inf to fit it. `(B, H, W, C)` -> `(B, H', W', C)`."""
    pads = [(0, 0)]
    for size in x.shape[1:3]:
        span = size + 2 * pad - window
        out = (math.ceil(span / stride) if ceil else span // stride) + 1
        if ceil and (out - 1) * stride >= size + pad:
            out -= 1
        pads.append((pad, max(pad, (out - 1) * stride + window - size - pad)))
    pads.append((0, 0))
    dims = (1, window, window, 1)
    strides = (1, stride, stride, 1)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, pads)


def lrn(
    x: jax.Array, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> jax.Array:
    """Caffe across-channel local response normalisation, `(B, H, W, C)` -> same shape:
    `x / (k + alpha / size * sum of x^2 over `size` channels centred on c) ** beta`, zeros
    beyond the first and last channel. Computed in float32, returned in `x.dtype`."""
    xf = _wide(x)
    half = size // 2
    pads = ((0, 0), (0, 0), (0, 0), (half, half))
    sums = jax.lax.reduce_window(xf * xf, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1), pads)
    return (xf / (k + (alpha / size) * sums) ** beta).astype(x.dtype)


class Inception(nnx.Module):
    """GoogLeNet's inception module with dimension reductions: the channel concatenation of a
    1x1 conv, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3/1 max pool -> 1x1 branches (all relu, 'same').
    `(B, H, W, cin)` -> `(B, H, W, n1x1 + n3x3 + n5x5 + pool_proj)`."""

    def __init__(
        self,
        cin: int,
        n1x1: int,
        n3x3red: int,
        n3x3: int,
        n5x5red: int,
        n5x5: int,
        pool_proj: int,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(padding="SAME", dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.b1 = nnx.Conv(cin, n1x1, (1, 1), **kw)
        self.b2_reduce = nnx.Conv(cin, n3x3red, (1, 1), **kw)
        self.b2 = nnx.Conv(n3x3red, n3x3, (3, 3), **kw)
        self.b3_reduce = nnx.Conv(cin, n5x5red, (1, 1), **kw)
        self.b3 = nnx.Conv(n5x5red, n5x5, (5, 5), **kw)
        self.b4 = nnx.Conv(cin, pool_proj, (1, 1), **kw)
        self.features = n1x1 + n3x3 + n5x5 + pool_proj

    def __call__(self, x: jax.Array) -> jax.Array:
        """`(B, H, W, cin)` -> `(B, H, W, features)`."""
        relu = jax.nn.relu
        return jnp.concatenate(
            [
                relu(self.b1(x)),
                relu(self.b2(relu(self.b2_reduce(x)))),
                relu(self.b3(relu(self.b3_reduce(x)))),
                relu(self.b4(max_pool(x, 3, 1, pad=1))),
            ],
            axis=-1,
        )


class AuxHead(nnx.Module):
    """GoogLeNet's side classifier (training only): 5x5/3 average pool, 1x1 conv 128, dense
    1024, dropout 0.7, dense. `(B, 14, 14, cin)` -> `(B, num_classes)`."""

    def __init__(
        self,
        cin: int,
        num_classes: int,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv = nnx.Conv(cin, 128, (1, 1), **kw)
        self.fc = nnx.Linear(4 * 4 * 128, 1024, **kw)
        self.dropout = nnx.Dropout(0.7, rngs=rngs)
        self.classifier = nnx.Linear(1024, num_classes, **kw)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """`(B, 14, 14, cin)` -> `(B, num_classes)`."""
        x = jax.nn.relu(self.conv(avg_pool(x, 5, 3)))
        x = jax.nn.relu(self.fc(x.reshape(x.shape[0], -1)))
        return self.classifier(self.dropout(x, deterministic=not train))


class GoogLeNet(nnx.Module):
    """GoogLeNet (Inception v1) on 224x224x3 with Caffe's LRN and ceil-mode pooling and both
    auxiliary classifiers: 13,378,280 parameters. No batch norm."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = nnx.Conv(3, 64, (7, 7), (2, 2), padding=3, **kw)
        self.conv2_reduce = nnx.Conv(64, 64, (1, 1), **kw)
        self.conv2 = nnx.Conv(64, 192, (3, 3), padding="SAME", **kw)
        self.inception_3a = Inception(192, 64, 96, 128, 16, 32, 32, **kw)
        self.inception_3b = Inception(256, 128, 128, 192, 32, 96, 64, **kw)
        self.inception_4a = Inception(480, 192, 96, 208, 16, 48, 64, **kw)
        self.aux1 = AuxHead(512, num_classes, **kw)
        self.inception_4b = Inception(512, 160, 112, 224, 24, 64, 64, **kw)
        self.inception_4c = Inception(512, 128, 128, 256, 24, 64, 64, **kw)
        self.inception_4d = Inception(512, 112, 144, 288, 32, 64, 64, **kw)
        self.aux2 = AuxHead(528, num_classes, **kw)
        self.inception_4e = Inception(528, 256, 160, 320, 32, 128, 128, **kw)
        self.inception_5a = Inception(832, 256, 160, 320, 32, 128, 128, **kw)
        self.inception_5b = Inception(832, 384, 192, 384, 48, 128, 128, **kw)
        self.dropout = nnx.Dropout(0.4, rngs=rngs)
        self.fc = nnx.Linear(1024, num_classes, **kw)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array | dict[str, jax.Array]:
        """`(B, 224, 224, 3)` -> logits `(B, num_classes)`; with `train`, a dict of the
        `"main"`, `"aux1"` and `"aux2"` heads' logits."""
        relu = jax.nn.relu
        x = lrn(max_pool(relu(self.conv1(x)), 3, 2, ceil=True))  # 56x56x64
        x = lrn(relu(self.conv2(relu(self.conv2_reduce(x)))))  # 56x56x192
        x = max_pool(x, 3, 2, ceil=True)  # 28x28x192
        x = self.inception_3b(self.inception_3a(x))  # 28x28x480
        x = self.inception_4a(max_pool(x, 3, 2, ceil=True))  # 14x14x512
        aux1 = self.aux1(x, train) if train else None
        x = self.inception_4d(self.inception_4c(self.inception_4b(x)))  # 14x14x528
        aux2 = self.aux2(x, train) if train else None
        x = max_pool(self.inception_4e(x), 3, 2, ceil=True)  # 7x7x832
        x = self.inception_5b(self.inception_5a(x))  # 7x7x1024
        x = _wide(x).mean(axis=(1, 2)).astype(x.dtype)  # the 7x7 average pool
        logits = self.fc(self.dropout(x, deterministic=not train))
        if train:
            return {"main": logits, "aux1": aux1, "aux2": aux2}
        return logits


class Bottleneck(nnx.Module):
    """ResNet v1.5 bottleneck: 1x1 `width`, 3x3 `width` (carrying the stride), 1x1
    `4 * width`, each with BN, and a shortcut, projected (1x1 conv + BN) when the shape
    changes. `(B, H, W, cin)` -> `(B, H / stride, W / stride, 4 * width)`."""

    def __init__(
        self,
        cin: int,
        width: int,
        stride: int,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        bn = dict(momentum=0.9, epsilon=1e-5, **kw)
        cout = 4 * width
        self.conv1 = nnx.Conv(cin, width, (1, 1), use_bias=False, **kw)
        self.bn1 = nnx.BatchNorm(width, **bn)
        self.conv2 = nnx.Conv(
            width, width, (3, 3), (stride, stride), padding=1, use_bias=False, **kw
        )
        self.bn2 = nnx.BatchNorm(width, **bn)
        self.conv3 = nnx.Conv(width, cout, (1, 1), use_bias=False, **kw)
        self.bn3 = nnx.BatchNorm(cout, **bn)
        self.project = stride != 1 or cin != cout
        if self.project:
            self.short_conv = nnx.Conv(cin, cout, (1, 1), (stride, stride), use_bias=False, **kw)
            self.short_bn = nnx.BatchNorm(cout, **bn)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """`(B, H, W, cin)` -> `(B, H / stride, W / stride, 4 * width)`."""
        ura = not train
        y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=ura))
        y = jax.nn.relu(self.bn2(self.conv2(y), use_running_average=ura))
        y = self.bn3(self.conv3(y), use_running_average=ura)
        shortcut = self.short_bn(self.short_conv(x), use_running_average=ura) if self.project else x
        return jax.nn.relu(y + shortcut)


class ResNet50(nnx.Module):
    """ResNet-50 (torchvision v1.5) on 224x224x3: 7x7/2 stem, 3x3/2 max pool, [3, 4, 6, 3]
    bottlenecks of widths 64-512, global average pool: 25,557,032 parameters."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = nnx.Conv(3, 64, (7, 7), (2, 2), padding=3, use_bias=False, **kw)
        self.bn1 = nnx.BatchNorm(64, momentum=0.9, epsilon=1e-5, **kw)
        blocks, cin = [], 64
        for width, depth, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(depth):
                blocks.append(Bottleneck(cin, width, stride if i == 0 else 1, **kw))
                cin = 4 * width
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(2048, num_classes, **kw)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """`(B, 224, 224, 3)` -> `(B, num_classes)`."""
        x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        x = max_pool(x, 3, 2, pad=1)  # 56x56x64
        for block in self.blocks:
            x = block(x, train)
        return self.fc(x.mean(axis=(1, 2)))


MODELS = {
    "lenet5": LeNet5,
    "resnet18_cifar": ResNet18Cifar,
    "googlenet": GoogLeNet,
    "resnet50": ResNet50,
}
