"""Hand-written Keras 3 models (JAX backend, NHWC), as a Keras user would write them, and a
runner that times them the way Keras trains them.

    python benchmarks/handwritten_keras.py [--models lenet5 ...] [--batch 64] [--steps 10]
                                           [--rounds 3] [--dtype float32|bfloat16]

The models are written with the functional API and plain `keras.layers` (no netspec code), with
the same architecture and trainable-parameter count as the zoo specs `lenet5` (61,706),
`resnet18_cifar` (11,173,962), `googlenet` (13,378,280 with both auxiliary heads) and
`resnet50` (25,557,032). Keras 3 has no LRN layer, so `LRN` below is one, written with
`keras.ops` (Caffe's across-channel form, computed in float32, as netspec's). Where a spec pads
explicitly and Keras's "same" would pad differently (a stride-2 window on an even size: "same"
puts the whole extra pixel at the end), the layer is preceded by `ZeroPadding2D`, as
`keras.applications.ResNet50` does; the max pool after a ReLU may pad with zeros. GoogLeNet's
ceil-rounded 3x3/2 max pools are "same" pools: on 112, 56, 28 and 14 both give 56, 28, 14 and 7
with the windows at 0, 2, 4, ... and the one extra (padded) cell at the far end.

Precision: "float32", or "bfloat16", meaning Keras's "mixed_bfloat16" policy (float32
variables, bfloat16 compute), set on each layer of the model (`dtype=`); no global policy is
touched. The classifier layers are `Dense(..., dtype="float32")`, as Keras's mixed-precision
guide recommends, so the logits and the cross-entropy are float32.

Timing (`KerasRunner`): the model is compiled as a Keras user compiles it,
`SGD(0.01, momentum=0.9)`, `SparseCategoricalCrossentropy(from_logits=True)` (GoogLeNet: one
per output, `loss_weights` 1.0, 0.3, 0.3), `jit_compile=True`, no metrics, and trained with
`model.fit`: one call of `epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False` over a
Python generator that yields the same batch, already on the device (`jax.random` images and
labels), `steps` times. `fit` is used rather than `train_on_batch` because on the JAX backend
`train_on_batch` converts the logs to Python floats after every step (a host sync each step),
while `fit` keeps dispatching and hands the per-step logs to its callbacks on a worker thread.

The timed region of `run(steps)` is that one `fit` call and then waiting until the model's and
the optimizer's variables are ready: it includes `fit`'s per-call work (its epoch iterator and
callback list, gathering the variables into a state and assigning them back at the end, the
default `History` callback, the per-step device-to-host read of the loss that callback does on
its thread), and per step Keras's Python around the jitted train step (on a GPU its iterator
calls `jax.device_put` on a batch that is already there: no host-to-device copy). The train
step itself is Keras's: forward, loss, gradients, the SGD update, batch-norm statistics,
dropout masks, the loss-tracker metrics, in one `jax.jit` with the state donated. `compile_s`
is the time of the first `fit` call, of one step: building the optimizer's and metrics'
variables, tracing, XLA compilation and that step.
"""

from __future__ import annotations

import os
import sys

_NEEDS_JAX = (
    "benchmarks/handwritten_keras.py needs Keras on the JAX backend, but {}. Keras fixes its "
    "backend when it is first imported: set KERAS_BACKEND=jax (or leave it unset) before "
    "anything imports keras."
)
os.environ.setdefault("KERAS_BACKEND", "jax")
if "keras" not in sys.modules and os.environ["KERAS_BACKEND"] != "jax":
    raise ImportError(_NEEDS_JAX.format(f"KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}"))

import keras  # noqa: E402

if keras.backend.backend() != "jax":
    raise ImportError(
        _NEEDS_JAX.format(f"keras was already imported with {keras.backend.backend()!r}")
    )

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import jax  # noqa: E402
from keras import layers, ops  # noqa: E402

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
"""Benchmark dtype -> the Keras dtype policy every layer gets."""

FORMAT = "channels_last"


class LRN(keras.layers.Layer):
    """Caffe's across-channel local response normalisation on NHWC inputs:
    `x / (k + alpha / size * sum of x^2 over `size` channels centred on c) ** beta`, zeros
    beyond the first and last channel; computed in float32, returned in the compute dtype."""

    def __init__(
        self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd number, got {size}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)

    def call(self, x):
        xf = ops.cast(x, "float32")
        half, channels = self.size // 2, x.shape[-1]
        squares = ops.pad(ops.square(xf), [[0, 0], [0, 0], [0, 0], [half, half]])
        sums = squares[..., 0:channels]
        for i in range(1, self.size):
            sums = sums + squares[..., i : i + channels]
        y = xf / ops.power(self.k + (self.alpha / self.size) * sums, self.beta)
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)
        return config


def conv(x, filters, kernel, stride=1, padding="same", *, dt, bias=True, activation=None):
    """Conv2D; an int `padding` is explicit zero padding on every side (ZeroPadding2D first)."""
    if isinstance(padding, int):
        x = layers.ZeroPadding2D(padding, data_format=FORMAT, dtype=dt)(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel,
        stride,
        padding=padding,
        use_bias=bias,
        activation=activation,
        data_format=FORMAT,
        dtype=dt,
    )(x)


def bn(x, *, dt):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dt)(x)


def relu(x, *, dt):
    return layers.ReLU(dtype=dt)(x)


def classifier(x, classes: int, name: str):
    """The logits, in float32 whatever the policy."""
    return layers.Dense(classes, dtype="float32", name=name)(x)


# --- LeNet-5 -------------------------------------------------------------------------------


def lenet5(dt: str, classes: int = 10) -> keras.Model:
    """LeNet-5 on 32x32x1: tanh, 2x2 average pooling, 61,706 parameters."""
    inputs = keras.Input((32, 32, 1), dtype="float32")
    x = conv(inputs, 6, 5, padding="valid", activation="tanh", dt=dt)
    x = layers.AveragePooling2D(2, data_format=FORMAT, dtype=dt)(x)
    x = conv(x, 16, 5, padding="valid", activation="tanh", dt=dt)
    x = layers.AveragePooling2D(2, data_format=FORMAT, dtype=dt)(x)
    x = conv(x, 120, 5, padding="valid", activation="tanh", dt=dt)
    x = layers.Flatten(dtype=dt)(x)
    x = layers.Dense(84, activation="tanh", dtype=dt)(x)
    return keras.Model(inputs, classifier(x, classes, "output"), name="lenet5")


# --- ResNets -------------------------------------------------------------------------------


def basic_block(x, filters: int, stride: int, project: bool, *, dt):
    """Two 3x3 conv-BN layers and a shortcut, projected (1x1 conv + BN) when asked."""
    y = conv(x, filters, 3, stride, "same" if stride == 1 else 1, bias=False, dt=dt)
    y = relu(bn(y, dt=dt), dt=dt)
    y = bn(conv(y, filters, 3, bias=False, dt=dt), dt=dt)
    if project:
        x = bn(conv(x, filters, 1, stride, "valid", bias=False, dt=dt), dt=dt)
    return relu(layers.Add(dtype=dt)([y, x]), dt=dt)


def bottleneck(x, width: int, stride: int, project: bool, *, dt):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's ResNet v1.5), 1x1 expand by 4."""
    y = relu(bn(conv(x, width, 1, bias=False, dt=dt), dt=dt), dt=dt)
    y = conv(y, width, 3, stride, "same" if stride == 1 else 1, bias=False, dt=dt)
    y = relu(bn(y, dt=dt), dt=dt)
    y = bn(conv(y, 4 * width, 1, bias=False, dt=dt), dt=dt)
    if project:
        x = bn(conv(x, 4 * width, 1, stride, "valid", bias=False, dt=dt), dt=dt)
    return relu(layers.Add(dtype=dt)([y, x]), dt=dt)


def resnet18_cifar(dt: str, classes: int = 10) -> keras.Model:
    """ResNet-18 for 32x32 CIFAR: 3x3 stem, no max pool, [2, 2, 2, 2] basic blocks."""
    inputs = keras.Input((32, 32, 3), dtype="float32")
    x = relu(bn(conv(inputs, 64, 3, bias=False, dt=dt), dt=dt), dt=dt)
    cin = 64
    for filters, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = basic_block(x, filters, stride, stride != 1 or cin != filters, dt=dt)
        x = basic_block(x, filters, 1, False, dt=dt)
        cin = filters
    x = layers.GlobalAveragePooling2D(data_format=FORMAT, dtype=dt)(x)  # the 4x4 average pool
    return keras.Model(inputs, classifier(x, classes, "linear"), name="resnet18_cifar")


def resnet50(dt: str, classes: int = 1000) -> keras.Model:
    """ResNet-50 (torchvision's v1.5) on 224x224: bottlenecks [3, 4, 6, 3], 25,557,032 params."""
    inputs = keras.Input((224, 224, 3), dtype="float32")
    x = relu(bn(conv(inputs, 64, 7, 2, 3, bias=False, dt=dt), dt=dt), dt=dt)
    x = layers.ZeroPadding2D(1, data_format=FORMAT, dtype=dt)(x)  # after ReLU: zeros = -inf
    x = layers.MaxPooling2D(3, 2, data_format=FORMAT, dtype=dt)(x)  # 56x56x64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            x = bottleneck(x, width, stride if i == 0 else 1, i == 0, dt=dt)
    x = layers.GlobalAveragePooling2D(data_format=FORMAT, dtype=dt)(x)
    return keras.Model(inputs, classifier(x, classes, "fc"), name="resnet50")


# --- GoogLeNet -----------------------------------------------------------------------------


def inception(x, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj, *, dt):
    """Figure 2(b) of the paper: four branches concatenated on channels."""
    relu_conv = lambda y, filters, kernel: conv(y, filters, kernel, activation="relu", dt=dt)  # noqa: E731
    b1 = relu_conv(x, n1x1, 1)
    b3 = relu_conv(relu_conv(x, n3x3red, 1), n3x3, 3)
    b5 = relu_conv(relu_conv(x, n5x5red, 1), n5x5, 5)
    bp = layers.MaxPooling2D(3, 1, padding="same", data_format=FORMAT, dtype=dt)(x)
    bp = relu_conv(bp, pool_proj, 1)
    return layers.Concatenate(axis=-1, dtype=dt)([b1, b3, b5, bp])


def aux_classifier(x, classes: int, name: str, *, dt):
    """Section 5's side classifier on a 14x14 map, used in training only."""
    x = layers.AveragePooling2D(5, 3, data_format=FORMAT, dtype=dt)(x)  # 4x4
    x = conv(x, 128, 1, activation="relu", dt=dt)
    x = layers.Flatten(dtype=dt)(x)
    x = layers.Dense(1024, activation="relu", dtype=dt)(x)
    x = layers.Dropout(0.7, dtype=dt)(x)
    return classifier(x, classes, name)


def googlenet(dt: str, classes: int = 1000) -> keras.Model:
    """GoogLeNet (Inception v1) for training: outputs (main, aux1, aux2) logits."""
    pool = lambda y: layers.MaxPooling2D(3, 2, "same", data_format=FORMAT, dtype=dt)(y)  # noqa: E731
    inputs = keras.Input((224, 224, 3), dtype="float32")
    x = conv(inputs, 64, 7, 2, 3, activation="relu", dt=dt)  # 112x112x64
    x = LRN(5, 1e-4, 0.75, dtype=dt)(pool(x))  # 56x56x64
    x = conv(x, 64, 1, activation="relu", dt=dt)
    x = conv(x, 192, 3, activation="relu", dt=dt)
    x = pool(LRN(5, 1e-4, 0.75, dtype=dt)(x))  # 28x28x192
    x = inception(x, 64, 96, 128, 16, 32, 32, dt=dt)
    x = inception(x, 128, 128, 192, 32, 96, 64, dt=dt)
    x = pool(x)  # 14x14x480
    x = inception(x, 192, 96, 208, 16, 48, 64, dt=dt)
    aux1 = aux_classifier(x, classes, "aux1", dt=dt)
    x = inception(x, 160, 112, 224, 24, 64, 64, dt=dt)
    x = inception(x, 128, 128, 256, 24, 64, 64, dt=dt)
    x = inception(x, 112, 144, 288, 32, 64, 64, dt=dt)
    aux2 = aux_classifier(x, classes, "aux2", dt=dt)
    x = inception(x, 256, 160, 320, 32, 128, 128, dt=dt)
    x = pool(x)  # 7x7x832
    x = inception(x, 256, 160, 320, 32, 128, 128, dt=dt)
    x = inception(x, 384, 192, 384, 48, 128, 128, dt=dt)
    x = layers.GlobalAveragePooling2D(data_format=FORMAT, dtype=dt)(x)  # the 7x7 average pool
    x = layers.Dropout(0.4, dtype=dt)(x)
    main = classifier(x, classes, "linear")
    return keras.Model(inputs, [main, aux1, aux2], name="googlenet")


@dataclass(frozen=True)
class ModelInfo:
    build: Callable[..., keras.Model]
    input_shape: tuple[int, int, int]
    classes: int
    params: int  # trainable, as netspec counts them
    loss_weights: tuple[float, ...] = (1.0,)


MODELS = {
    "lenet5": ModelInfo(lenet5, (32, 32, 1), 10, 61_706),
    "resnet18_cifar": ModelInfo(resnet18_cifar, (32, 32, 3), 10, 11_173_962),
    "googlenet": ModelInfo(googlenet, (224, 224, 3), 1000, 13_378_280, (1.0, 0.3, 0.3)),
    "resnet50": ModelInfo(resnet50, (224, 224, 3), 1000, 25_557_032),
}


def count(model: keras.Model) -> int:
    """Trainable parameters (batch-norm statistics and dropout seeds are not counted)."""
    return sum(math.prod(v.shape) for v in model.trainable_variables)


def build(name: str, dtype: str = "float32") -> keras.Model:
    """The model `name` with every layer on the policy for `dtype` ("float32" or "bfloat16")."""
    if dtype not in POLICIES:
        raise ValueError(f"dtype must be one of {', '.join(POLICIES)}, got {dtype!r}")
    return MODELS[name].build(POLICIES[dtype])


class KerasRunner:
    """One model compiled with `model.compile` and trained with `model.fit` on fixed
    synthetic data already on the device (the module docstring says what is timed)."""

    label = "keras"

    def __init__(self, name: str, batch: int, dtype: str = "float32", seed: int = 0) -> None:
        info = MODELS[name]
        self.model = build(name, dtype)
        self.params = count(self.model)
        heads = len(info.loss_weights)
        loss = [keras.losses.SparseCategoricalCrossentropy(from_logits=True) for _ in range(heads)]
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=loss if heads > 1 else loss[0],
            loss_weights=list(info.loss_weights) if heads > 1 else None,
            jit_compile=True,
        )
        key_images, key_labels = jax.random.split(jax.random.key(seed))
        images = jax.random.normal(key_images, (batch, *info.input_shape))
        labels = jax.random.randint(key_labels, (batch,), 0, info.classes)
        self.batch = (images, tuple([labels] * heads) if heads > 1 else labels)
        start = time.perf_counter()
        self._fit(1)
        self.compile_s = time.perf_counter() - start

    def _batches(self):
        while True:
            yield self.batch

    def _fit(self, steps: int) -> None:
        self.model.fit(self._batches(), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        jax.block_until_ready(
            [v.value for v in (*self.model.variables, *self.model.optimizer.variables)]
        )

    def run(self, steps: int) -> float:
        """Seconds per step of one `fit` over `steps` steps (waited for at the end)."""
        start = time.perf_counter()
        self._fit(steps)
        return (time.perf_counter() - start) / steps


def make_runner(model: str, batch: int, dtype: str = "float32", **options) -> KerasRunner:
    """The harness's entry point (benchmarks/run.py): `options` may hold `seed`."""
    return KerasRunner(model, batch, dtype, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=list(POLICIES))
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"keras {keras.__version__}, jax {jax.__version__}, {device.device_kind}")
    failed = False
    for name in args.models:
        runner = KerasRunner(name, args.batch, args.dtype)
        expected = MODELS[name].params
        if runner.params != expected:
            print(f"{name}: {runner.params:,} parameters, expected {expected:,}", file=sys.stderr)
            failed = True
        runner.run(3)  # warm-up
        ms = statistics.median(runner.run(args.steps) for _ in range(args.rounds)) * 1e3
        print(
            f"{name}: {runner.params:,} params, batch {args.batch}, {args.dtype}: {ms:.2f} ms/step "
            f"({args.batch / ms * 1e3:,.0f} images/s), compile {runner.compile_s:.1f} s"
        )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
