"""The zoo specs against references that do not come from netspec.

Every expected number here is either a published count (cited next to it) or computed by a small
plain-Python function written from the paper's table, never from the spec file or netspec's
output. MACs are multiply-accumulates per image; torchvision's "GFLOPS" (`_ops`) count
multiply-adds, so they compare directly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import pytest

from netspec import Report, analyze_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"


# ---------------------------------------------------------------------------------------------
# Plain-Python parameter counts, written from the papers' tables


def conv(kernel: int | tuple[int, int], cin: int, cout: int, bias: bool = True) -> int:
    """Weights (+ biases) of a convolution."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return kh * kw * cin * cout + (cout if bias else 0)


def conv_bn(kernel: int | tuple[int, int], cin: int, cout: int, bias: bool = False) -> int:
    """A convolution followed by batch norm (trainable gamma and beta per channel)."""
    return conv(kernel, cin, cout, bias) + 2 * cout


def dense(features: int, units: int) -> int:
    return features * units + units


# GoogLeNet, Szegedy et al. 2015, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_TABLE = {
    "inception_3a": (64, 96, 128, 16, 32, 32),
    "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64),
    "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64),
    "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128),
    "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}


def googlenet_params(num_classes: int = 1000, aux: bool = True) -> dict[str, int]:
    """Per table row: the stem (7x7/2 conv 64; 1x1 64 + 3x3 192), the inception modules (all
    convolutions with biases), the 1024 -> classes linear layer and, with `aux`, Section 5's
    two side classifiers on 4a and 4d (5x5/3 avg pool to 4x4, 1x1 conv 128, fc 1024, fc)."""
    rows = {"stem": conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)}
    channels = 192
    for name, (n1, r3, n3, r5, n5, proj) in GOOGLENET_TABLE.items():
        rows[name] = (
            conv(1, channels, n1)
            + conv(1, channels, r3)
            + conv(3, r3, n3)
            + conv(1, channels, r5)
            + conv(5, r5, n5)
            + conv(1, channels, proj)
        )
        channels = n1 + n3 + n5 + proj
        if aux and name in ("inception_4a", "inception_4d"):
            rows[f"aux after {name}"] = (
                conv(1, channels, 128) + dense(4 * 4 * 128, 1024) + dense(1024, num_classes)
            )
    rows["linear"] = dense(channels, num_classes)
    return rows


# BN-Inception, Ioffe & Szegedy 2015, Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce,
# double #3x3, pool projection (0: max pool passed through, with stride 2).
INCEPTION_V2_TABLE = {
    "3a": (64, 64, 64, 64, 96, 32),
    "3b": (64, 64, 96, 64, 96, 64),
    "3c": (0, 128, 160, 64, 96, 0),
    "4a": (224, 64, 96, 96, 128, 128),
    "4b": (192, 96, 128, 96, 128, 128),
    "4c": (160, 128, 160, 128, 160, 128),
    "4d": (96, 128, 192, 160, 192, 128),
    "4e": (0, 128, 192, 192, 256, 0),
    "5a": (352, 192, 320, 160, 224, 128),
    "5b": (352, 192, 320, 192, 224, 128),
}


def inception_v2_params(num_classes: int = 1000) -> dict[str, int]:
    """Every convolution without bias and followed by batch norm; a regular 7x7 stem conv."""
    rows = {"stem": conv_bn(7, 3, 64) + conv_bn(1, 64, 64) + conv_bn(3, 64, 192)}
    channels = 192
    for name, (n1, r3, n3, d_red, d3, proj) in INCEPTION_V2_TABLE.items():
        rows[name] = (
            (conv_bn(1, channels, n1) if n1 else 0)
            + conv_bn(1, channels, r3)
            + conv_bn(3, r3, n3)
            + conv_bn(1, channels, d_red)
            + conv_bn(3, d_red, d3)
            + conv_bn(3, d3, d3)
            + (conv_bn(1, channels, proj) if proj else 0)
        )
        channels = n1 + n3 + d3 + (proj if proj else channels)
    rows["linear"] = dense(channels, num_classes)
    return rows


def inception10_params(num_classes: int = 10) -> dict[str, int]:
    """The TF2 course's Inception10(num_blocks=2): ConvBNRelu = Conv2D with bias + BN (gamma,
    beta) + ReLU; each InceptionBlk(ch) has four ch-channel branches (1x1; 1x1 -> 3x3;
    1x1 -> 5x5; maxpool -> 1x1); two modules per block, ch = 16 then 32; GAP; Dense."""

    def block(cin: int, ch: int) -> int:
        return (
            4 * conv_bn(1, cin, ch, bias=True)
            + conv_bn(3, ch, ch, bias=True)
            + conv_bn(5, ch, ch, bias=True)
        )

    rows = {"stem": conv_bn(3, 3, 16, bias=True)}
    channels = 16
    for b, ch in enumerate((16, 32)):
        for m in range(2):
            rows[f"block{b + 1}/{m}"] = block(channels, ch)
            channels = 4 * ch
    rows["dense"] = dense(channels, num_classes)
    return rows


# ---------------------------------------------------------------------------------------------
# References


@dataclasses.dataclass(frozen=True)
class Ref:
    input: tuple[int, int, int]
    num_classes: int
    params: int  # every trainable parameter, auxiliary heads included
    inference_params: int | None = None  # without train-only heads, where they exist
    # The classifier layers whose size follows num_classes: (row name or None for a
    # train-only head's, input features). The first is the main classifier row.
    classifiers: tuple[tuple[str | None, int], ...] = ()


REFS = {
    # LeCun et al. 1998 with full C3 connectivity: the 61,706 quoted for the usual Keras/PyTorch
    # LeNet-5 (C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850, Section II-B sizes).
    "lenet5": Ref((32, 32, 1), 10, 61_706, classifiers=(("output", 84),)),
    # Caffe's bvlc_alexnet (models/bvlc_alexnet), the paper's net with its two GPU groups.
    "alexnet": Ref((227, 227, 3), 1000, 60_965_224, classifiers=(("fc8", 4096),)),
    # torchvision VGG16_Weights.IMAGENET1K_V1 "num_params".
    "vgg16": Ref((224, 224, 3), 1000, 138_357_544, classifiers=(("fc8", 4096),)),
    # No single canonical count: the Table 1 formula above.
    "googlenet": Ref(
        (224, 224, 3),
        1000,
        sum(googlenet_params().values()),
        sum(googlenet_params(aux=False).values()),
        classifiers=(("linear", 1024), (None, 1024), (None, 1024)),
    ),
    # No single canonical count: the Figure 5 formula above.
    "inception_v2": Ref(
        (224, 224, 3),
        1000,
        sum(inception_v2_params().values()),
        classifiers=(("linear", 1024),),
    ),
    # torchvision Inception_V3_Weights.IMAGENET1K_V1 "num_params" (aux_logits=True); without
    # the AuxLogits head (768*128 + BN, 5x5 conv 128 -> 768 + BN, fc 768 -> 1000: 3,326,696).
    "inception_v3": Ref(
        (299, 299, 3),
        1000,
        27_161_264,
        23_834_568,
        classifiers=(("fc", 2048), (None, 768)),
    ),
    # torchvision ResNet{18,34,50}_Weights.IMAGENET1K_V1 "num_params".
    "resnet18": Ref((224, 224, 3), 1000, 11_689_512, classifiers=(("fc", 512),)),
    "resnet34": Ref((224, 224, 3), 1000, 21_797_672, classifiers=(("fc", 512),)),
    "resnet50": Ref((224, 224, 3), 1000, 25_557_032, classifiers=(("fc", 2048),)),
    # No single canonical count: the formula above (the course's Keras model.summary() shows it
    # as trainable params).
    "inception10": Ref(
        (32, 32, 3), 10, sum(inception10_params().values()), classifiers=(("f1", 128),)
    ),
    # kuangliu/pytorch-cifar ResNet18() (models/resnet.py), summed over model.parameters().
    "resnet18_cifar": Ref((32, 32, 3), 10, 11_173_962, classifiers=(("linear", 512),)),
}

# Published multiply-accumulates per image, compared within 2%.
MACS = {
    # torchvision's "_ops" (GFLOPS counting one multiply-add as one op) in the weights' meta.
    "resnet18": 1.814e9,
    "resnet34": 3.664e9,
    "resnet50": 4.089e9,
    "vgg16": 15.47e9,
    "inception_v3": 5.713e9,  # at 299x299, without the auxiliary head
    # Sze et al., "Efficient Processing of Deep Neural Networks: A Tutorial and Survey",
    # Proc. IEEE 2017, table of popular DNNs: AlexNet 724M MACs (Caffe model, 227x227, groups).
    "alexnet": 0.724e9,
}

NAMES = sorted(REFS)


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


@functools.cache
def report(name: str) -> Report:
    return analyze_spec(spec_path(name))


def row(rep: Report, name: str):
    (found,) = [r for r in rep.rows if r.name == name]
    return found


# ---------------------------------------------------------------------------------------------
# Tests


def test_every_zoo_spec_has_references():
    from .test_zoo_modern import NAMES as MODERN

    others = [*MODERN, "unet"]  # in test_zoo_modern.py and test_zoo_unet.py
    assert sorted(p.stem for p in SPECS.glob("*.yaml")) == sorted([*NAMES, *others])


@pytest.mark.parametrize("name", NAMES)
def test_params_match_reference(name):
    ref, rep = REFS[name], report(name)
    assert rep.params == ref.params
    assert rep.inference_params == (ref.inference_params or ref.params)


@pytest.mark.parametrize("name", NAMES)
def test_input_and_output_shapes(name):
    ref, rep = REFS[name], report(name)
    assert rep.input_shape == ref.input
    assert rep.output_shape == (1, 1, ref.num_classes)


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("googlenet", googlenet_params),
        ("inception_v2", inception_v2_params),
    ],
)
def test_inception_rows_match_the_paper_table(name, formula):
    """Each inception module's params, row by row, against the table formula."""
    rep = report(name)
    table = GOOGLENET_TABLE if name == "googlenet" else INCEPTION_V2_TABLE
    expected = formula()
    assert {n: row(rep, n).params for n in table} == {n: expected[n] for n in table}


def test_formulas_reproduce_known_totals():
    """The formulas themselves, against totals derived by hand from the same tables."""
    assert sum(googlenet_params(aux=False).values()) == 6_998_552
    assert sum(googlenet_params().values()) == 13_378_280
    assert sum(inception_v2_params().values()) == 11_285_224
    assert sum(inception10_params().values()) == 120_234


# These specs pin the class count in a row expectation (`-> 1x1x1000` on the classifier rows)
# and expectations do not substitute variables, so --set num_classes=5 fails their own expect.


def check_num_classes(name: str, rep5: Report) -> None:
    ref, base = REFS[name], report(name)
    assert rep5.output_shape == (1, 1, 5)
    main_row, features = ref.classifiers[0]
    assert main_row is not None
    assert row(rep5, main_row).params == dense(features, 5)
    delta = sum(dense(f, ref.num_classes) - dense(f, 5) for _, f in ref.classifiers)
    assert base.params - rep5.params == delta


@pytest.mark.parametrize("name", NAMES)
def test_set_num_classes(name):
    check_num_classes(name, analyze_spec(spec_path(name), ["num_classes=5"]))


@pytest.mark.parametrize("name", sorted(MACS))
def test_macs_match_published(name):
    assert math.isclose(report(name).macs, MACS[name], rel_tol=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_header_has_run_line_and_totals(name):
    lines = spec_path(name).read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert any(line.startswith(f"# Run: netspec compile specs/{name}.yaml") for line in header), (
        "the header needs a `# Run: netspec compile specs/NAME.yaml` line"
    )
    rep = report(name)
    assert f"{rep.params:,}" in text
    assert f"{rep.inference_params:,}" in text
