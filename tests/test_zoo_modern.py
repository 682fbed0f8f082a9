"""The newer zoo specs (MobileNetV2, DenseNet-121, EfficientNet-B0, MobileNetV3-Large,
ShuffleNet V2 1x, ConvNeXt-T) against references that do not come from netspec, and trained
for a few steps at full size.

Every expected count is either torchvision's published number (the weights' meta:
`num_params`, and `_ops`, GFLOPS counting one multiply-add as one op) or computed by a small
plain-Python walk through the architecture as the paper's table and torchvision's code give it,
never from the spec file or netspec's output.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from netspec import Report, analyze_spec

from .conftest import SPECS
from .zoo_builds import built  # one build per spec, shared with test_flax_backend.py

# ---------------------------------------------------------------------------------------------
# Plain-Python counts, written from the papers' tables and torchvision's code


class Walk:
    """Follows a feature map through a network, adding up parameters, batch-norm statistics and
    multiply-adds (of convolutions and linear layers, as torchvision's counts).

    Convolutions pad (k - 1) // 2 by default, as torchvision's do; `row()` closes a table row
    and records its parameters."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        self.h, self.w, self.c = height, width, channels
        self.params = self.macs = self.stats = 0
        self.rows: dict[str, int] = {}
        self._row_start = 0

    def conv(
        self,
        kernel: int,
        filters: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        pad: int | None = None,
    ) -> None:
        pad = (kernel - 1) // 2 if pad is None else pad
        self.h = (self.h + 2 * pad - kernel) // stride + 1
        self.w = (self.w + 2 * pad - kernel) // stride + 1
        weights = kernel * kernel * (self.c // groups) * filters
        self.params += weights + (filters if bias else 0)
        self.macs += self.h * self.w * weights
        self.c = filters

    def bn(self) -> None:
        self.params += 2 * self.c  # gamma and beta
        self.stats += 2 * self.c  # running mean and variance

    def layernorm(self) -> None:
        self.params += 2 * self.c

    def conv_bn(self, kernel: int, filters: int, stride: int = 1, groups: int = 1) -> None:
        self.conv(kernel, filters, stride, groups)
        self.bn()

    def squeeze_excitation(self, squeeze: int) -> None:
        """Pool, 1x1 conv to `squeeze` (bias), 1x1 conv back (bias), scale: on a 1x1 map."""
        channels = self.c
        self.params += channels * squeeze + squeeze + squeeze * channels + channels
        self.macs += 2 * channels * squeeze

    def pool(self, kernel: int, stride: int, pad: int = 0) -> None:
        self.h = (self.h + 2 * pad - kernel) // stride + 1
        self.w = (self.w + 2 * pad - kernel) // stride + 1

    def global_pool(self) -> None:
        self.h = self.w = 1

    def dense(self, units: int) -> None:
        self.params += self.c * units + units
        self.macs += self.c * units
        self.c = units

    def row(self, name: str) -> None:
        self.rows[name] = self.params - self._row_start
        self._row_start = self.params


# MobileNetV2, Sandler et al. 2018, Table 2: expansion t, channels c, repeats n, first stride s.
MOBILENET_V2_TABLE = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(num_classes: int = 1000) -> Walk:
    """Table 2 with torchvision's InvertedResidual: [1x1 expand to t*c_in + BN + ReLU6 when
    t != 1], 3x3 depthwise (groups = channels) + BN + ReLU6, 1x1 projection + BN; convolutions
    without bias; a 1x1 conv to 1280, global pooling and a linear classifier."""
    net = Walk(224, 224, 3)
    net.conv_bn(3, 32, stride=2)
    net.row("conv1")
    for index, (t, c, n, s) in enumerate(MOBILENET_V2_TABLE, start=1):
        for i in range(n):
            hidden = net.c * t
            if t != 1:
                net.conv_bn(1, hidden)
            net.conv_bn(3, hidden, stride=s if i == 0 else 1, groups=hidden)
            net.conv_bn(1, c)
        net.row(f"bottleneck{index}")
    net.conv_bn(1, 1280)
    net.row("conv2")
    net.global_pool()
    net.dense(num_classes)
    net.row("fc")
    return net


def densenet121(num_classes: int = 1000, growth: int = 32, bn_size: int = 4) -> Walk:
    """Table 1 (DenseNet-121: blocks of 6, 12, 24, 16) with torchvision's _DenseLayer
    (BN, ReLU, 1x1 conv to bn_size*k, BN, ReLU, 3x3 conv to k; k new channels concatenated)
    and _Transition (BN, ReLU, 1x1 conv halving the channels, 2x2/2 average pool)."""
    net = Walk(224, 224, 3)
    net.conv(7, 64, stride=2)
    net.row("conv0")
    net.bn()
    net.row("norm0")
    net.pool(3, 2, pad=1)
    for block, layers in enumerate((6, 12, 24, 16), start=1):
        for _ in range(layers):
            channels = net.c
            net.bn()
            net.conv_bn(1, bn_size * growth)
            net.conv(3, growth)
            net.c = channels + growth  # concatenated after the layer's input
        net.row(f"denseblock{block}")
        if block < 4:
            net.bn()
            net.conv(1, net.c // 2)
            net.pool(2, 2)
            net.row(f"transition{block}")
    net.bn()
    net.row("norm5")
    net.global_pool()
    net.dense(num_classes)
    net.row("classifier")
    return net


# EfficientNet-B0, Tan & Le 2019, Table 1: MBConv expansion t, kernel, first stride, channels,
# layers.
EFFICIENTNET_B0_TABLE = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def efficientnet_b0(num_classes: int = 1000) -> Walk:
    """Table 1 with torchvision's MBConv: [1x1 expand + BN when t != 1], depthwise k x k + BN,
    squeeze-and-excitation to max(1, block input channels // 4), 1x1 projection + BN; a 3x3/2
    stem of 32, a 1x1 conv to 1280, global pooling and a linear classifier."""
    net = Walk(224, 224, 3)
    net.conv_bn(3, 32, stride=2)
    net.row("stage1")
    for stage, (t, k, s, c, n) in enumerate(EFFICIENTNET_B0_TABLE, start=2):
        for i in range(n):
            cin = net.c
            if t != 1:
                net.conv_bn(1, cin * t)
            net.conv_bn(k, cin * t, stride=s if i == 0 else 1, groups=cin * t)
            net.squeeze_excitation(max(1, cin // 4))
            net.conv_bn(1, c)
        net.row(f"stage{stage}")
    net.conv_bn(1, 1280)
    net.row("stage9")
    net.global_pool()
    net.dense(num_classes)
    net.row("fc")
    return net


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of `divisor`, never below 90% of `value` (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# MobileNetV3-Large, Howard et al. 2019, Table 1: kernel, expansion size, output channels,
# squeeze-and-excitation, stride.
MOBILENET_V3_LARGE_TABLE = [
    (3, 16, 16, False, 1),
    (3, 64, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, True, 1),
    (5, 960, 160, True, 1),
]


def mobilenet_v3_large(num_classes: int = 1000) -> Walk:
    """Table 1 with torchvision's InvertedResidual: [1x1 expand + BN when the expansion size
    differs from the input], depthwise + BN, [SE to make_divisible(exp / 4)], 1x1 projection +
    BN; a 3x3/2 stem of 16, a 1x1 conv to 960, pooling, linear 960 -> 1280 -> classes."""
    net = Walk(224, 224, 3)
    net.conv_bn(3, 16, stride=2)
    net.row("conv1")
    for index, (k, exp, out, se, s) in enumerate(MOBILENET_V3_LARGE_TABLE, start=1):
        if exp != net.c:
            net.conv_bn(1, exp)
        net.conv_bn(k, exp, stride=s, groups=exp)
        if se:
            net.squeeze_excitation(make_divisible(exp // 4))
        net.conv_bn(1, out)
        net.row(f"bneck{index}")
    net.conv_bn(1, 960)
    net.row("conv2")
    net.global_pool()
    net.dense(1280)
    net.row("fc1")
    net.dense(num_classes)
    net.row("fc2")
    return net


def shufflenet_v2_x1_0(num_classes: int = 1000) -> Walk:
    """Table 5 (1x: 24, 116, 232, 464, 1024; 4, 8, 4 units) with torchvision's units: stride 2
    runs branch1 (3x3/2 depthwise + BN, 1x1 + BN) and branch2 (1x1 + BN, 3x3/2 depthwise + BN,
    1x1 + BN) on the whole input; stride 1 runs branch2 on half the channels."""
    net = Walk(224, 224, 3)
    net.conv(3, 24, stride=2)
    net.row("conv1")
    net.bn()
    net.row("bn1")
    net.pool(3, 2, pad=1)
    for stage, (out, units) in enumerate(((116, 4), (232, 8), (464, 4)), start=2):
        half, unit_input = out // 2, (net.h, net.w, net.c)
        net.conv_bn(3, net.c, stride=2, groups=net.c)  # branch1
        net.conv_bn(1, half)
        net.h, net.w, net.c = unit_input  # branch2 reads the unit's input too
        net.conv_bn(1, half)
        net.conv_bn(3, half, stride=2, groups=half)
        net.conv_bn(1, half)
        net.c = out
        net.row(f"stage{stage}_down")
        for _ in range(units - 1):
            net.c = half
            net.conv_bn(1, half)
            net.conv_bn(3, half, groups=half)
            net.conv_bn(1, half)
        net.c = out
        net.row(f"stage{stage}")
    net.conv(1, 1024)
    net.row("conv5")
    net.bn()
    net.row("bn5")
    net.global_pool()
    net.dense(num_classes)
    net.row("fc")
    return net


def convnext_tiny(num_classes: int = 1000) -> Walk:
    """ConvNeXt-T (C = 96, 192, 384, 768; B = 3, 3, 9, 3), all convolutions with bias: a 4x4/4
    stem + LN; blocks of 7x7 depthwise, LN, 1x1 to 4C, 1x1 back, layer scale (C); between
    stages LN + 2x2/2 conv; pooling, LN, linear."""
    net = Walk(224, 224, 3)
    net.conv(4, 96, stride=4, bias=True, pad=0)
    net.row("stem")
    net.layernorm()
    net.row("stem_norm")
    for stage, (dim, blocks) in enumerate(((96, 3), (192, 3), (384, 9), (768, 3)), start=1):
        if stage > 1:
            net.layernorm()
            net.conv(2, dim, stride=2, bias=True, pad=0)
            net.row(f"downsample{stage - 1}")
        for _ in range(blocks):
            net.conv(7, dim, groups=dim, bias=True)
            net.layernorm()
            net.conv(1, 4 * dim, bias=True)
            net.conv(1, dim, bias=True)
            net.params += dim  # layer scale
        net.row(f"stage{stage}")
    net.global_pool()
    net.layernorm()
    net.row("norm")
    net.dense(num_classes)
    net.row("fc")
    return net


# ---------------------------------------------------------------------------------------------
# References


@dataclasses.dataclass(frozen=True)
class Ref:
    formula: Callable[..., Walk]
    params: int  # torchvision's weights meta "num_params"
    gmacs: float  # torchvision's weights meta "_ops" (GFLOPS counting multiply-adds)
    classifier: str  # the row whose size follows num_classes
    features: int  # its input features


REFS = {
    # MobileNet_V2_Weights.IMAGENET1K_V1: num_params 3,504,872, _ops 0.301.
    "mobilenet_v2": Ref(mobilenet_v2, 3_504_872, 0.301, "fc", 1280),
    # DenseNet121_Weights.IMAGENET1K_V1: num_params 7,978,856, _ops 2.834.
    "densenet121": Ref(densenet121, 7_978_856, 2.834, "classifier", 1024),
    # EfficientNet_B0_Weights.IMAGENET1K_V1: num_params 5,288,548, _ops 0.386.
    "efficientnet_b0": Ref(efficientnet_b0, 5_288_548, 0.386, "fc", 1280),
    # MobileNet_V3_Large_Weights.IMAGENET1K_V1: num_params 5,483,032, _ops 0.217.
    "mobilenet_v3_large": Ref(mobilenet_v3_large, 5_483_032, 0.217, "fc2", 1280),
    # ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1: num_params 2,278,604, _ops 0.145 (the docs'
    # table rounds it to 0.14).
    "shufflenet_v2_x1_0": Ref(shufflenet_v2_x1_0, 2_278_604, 0.145, "fc", 1024),
    # ConvNeXt_Tiny_Weights.IMAGENET1K_V1: num_params 28,589,128, _ops 4.456.
    "convnext_tiny": Ref(convnext_tiny, 28_589_128, 4.456, "fc", 768),
}
NAMES = sorted(REFS)
# The full-size tests run in the pytest-xdist worker that builds the spec for
# test_flax_backend.py (conftest's "zoo-NAME" groups), so each spec is built once.
BUILT = [pytest.param(n, marks=pytest.mark.xdist_group(f"zoo-{n}")) for n in NAMES]


@functools.cache
def report(name: str) -> Report:
    return analyze_spec(SPECS / f"{name}.yaml")


# ---------------------------------------------------------------------------------------------
# Counts


def test_formulas_reproduce_torchvision():
    """The walks themselves against torchvision's published counts."""
    for ref in REFS.values():
        net = ref.formula()
        assert net.params == ref.params
        assert math.isclose(net.macs, ref.gmacs * 1e9, rel_tol=0.002)


@pytest.mark.parametrize("name", NAMES)
def test_params_and_macs(name):
    ref, rep = REFS[name], report(name)
    net = ref.formula()
    assert rep.params == rep.inference_params == net.params == ref.params
    assert rep.state == net.stats
    assert rep.macs == net.macs
    assert math.isclose(rep.macs, ref.gmacs * 1e9, rel_tol=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_rows_match_the_formula(name):
    rep, net = report(name), REFS[name].formula()
    assert {r.name: r.params for r in rep.rows if r.name in net.rows} == net.rows


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_num_classes(name):
    ref, rep = REFS[name], report(name)
    assert rep.input_shape == (224, 224, 3)
    assert rep.output_shape == (1, 1, 1000)
    rep5 = analyze_spec(SPECS / f"{name}.yaml", ["num_classes=5"])
    assert rep5.output_shape == (1, 1, 5)
    assert rep5.params == ref.formula(num_classes=5).params
    (fc,) = [r for r in rep5.rows if r.name == ref.classifier]
    assert fc.params == ref.features * 5 + 5


@pytest.mark.parametrize("name", NAMES)
def test_header_cites_the_totals(name):
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert f"# Run: netspec compile specs/{name}.yaml" in header
    assert f"{REFS[name].params:,} parameters (torchvision)" in header
    assert f"{report(name).macs:,} multiply-adds" in header
    stats = report(name).state
    assert (f"{stats:,} batch-norm statistics" if stats else "no batch-norm statistics") in header


# ---------------------------------------------------------------------------------------------
# Full size: forward, backward and two SGD steps (batch 2 at 224x224). Eval mode is
# checked against torchvision in test_torchvision_logits.py.


@pytest.mark.parametrize("name", BUILT)
def test_forward_backward_and_sgd_steps(name):
    start = time.perf_counter()
    compiled, model = built(name)
    build_seconds = time.perf_counter() - start  # 0 where test_flax_backend.py built it first
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # functional: model unchanged
    x = jax.random.normal(jax.random.key(1), (2, 224, 224, 3))
    labels = jnp.array([3, 997])
    tx = optax.sgd(0.05)
    # XLA's backend unoptimised: DenseNet-121's step compiles in a third of the time (about
    # 50 s instead of 150 s on a busy 2-core CPU) and runs about as fast.
    jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})

    @jit
    def step(params, rest, opt_state):
        def loss_fn(params):
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = model(x, train=True)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            _, _, new_rest = nnx.split(model, nnx.Param, ...)
            return loss, new_rest

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return loss, grads, optax.apply_updates(params, updates), new_rest, opt_state

    opt_state = tx.init(params)
    losses = []
    for i in range(2):
        loss, grads, new_params, new_rest, opt_state = step(params, rest, opt_state)
        losses.append(float(loss))
        if i == 0:
            # Checked in NumPy: eager jnp ops would compile a small kernel per shape.
            leaves = [np.asarray(g) for g in jax.tree.leaves(grads)]
            assert len(leaves) == len(jax.tree.leaves(params))
            assert all(np.isfinite(g).all() for g in leaves)
            silent = sum(not np.any(g != 0) for g in leaves)
            assert silent == 0, f"{silent} parameters get no gradient"
            # Training mode updates every batch norm's running statistics.
            old = jax.tree.leaves(nnx.filter_state(rest, nnx.BatchStat))
            new = jax.tree.leaves(nnx.filter_state(new_rest, nnx.BatchStat))
            batch_norms = sum(n.op == "batchnorm" for n in compiled.report.nodes)
            assert len(old) == len(new) == 2 * batch_norms
            assert all(
                not np.array_equal(np.asarray(a), np.asarray(b))
                for a, b in zip(old, new, strict=True)
            )
        params, rest = new_params, new_rest
    assert all(math.isfinite(v) for v in losses)
    assert losses[1] < losses[0], losses  # the same batch: one SGD step brings its loss down

    steps_seconds = time.perf_counter() - start - build_seconds
    print(
        f"{name}: build {build_seconds:.1f} s, 2 SGD steps (with compiling) {steps_seconds:.1f} s"
    )
