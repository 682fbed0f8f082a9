"""Shape inference and costs against the textbook formulas, over random layer parameters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec import SpecError, analyze_spec


def one_layer(row: str, size: tuple[int, int, int]) -> str:
    h, w, c = size
    return f"name: t\ninput: [{h}, {w}, {c}]\nlayers:\n  - x: {row}\n"


def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """floor((n + 2p - d(k-1) - 1) / s) + 1 (e.g. the PyTorch Conv2d documentation)."""
    return math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1


def ceil_pool_out(n: int, k: int, s: int, p: int) -> int:
    """ceil((n + 2p - k) / s) + 1, dropping a last window that would start in the right padding
    or past the input (PyTorch's MaxPool2d ceil_mode documentation; Caffe applies the same drop
    only when padded, keeping an empty window otherwise)."""
    out = math.ceil((n + 2 * p - k) / s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


sizes = st.integers(1, 64)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)


@settings(max_examples=150, deadline=None)
@given(
    h=sizes,
    w=sizes,
    cin=st.integers(1, 16),
    cout=st.integers(1, 32),
    kh=kernels,
    kw=kernels,
    s=strides,
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    bias=st.booleans(),
)
def test_conv_explicit_padding(h, w, cin, cout, kh, kw, s, p, d, bias):
    row = f"conv {kh}x{kw}/{s} {cout} padding={p} dilation={d} bias={'true' if bias else 'false'}"
    oh, ow = conv_out(h, kh, s, p, d), conv_out(w, kw, s, p, d)
    text = one_layer(row, (h, w, cin))
    if oh < 1 or ow < 1:
        with pytest.raises(SpecError):
            analyze_spec(text)
        return
    (out,) = analyze_spec(text).rows
    assert out.output_shape == (oh, ow, cout)
    assert out.params == kh * kw * cin * cout + (cout if bias else 0)
    assert out.macs == oh * ow * cout * kh * kw * cin


@settings(max_examples=100, deadline=None)
@given(h=sizes, w=sizes, k=kernels, s=strides)
def test_conv_same_padding_gives_ceil_of_size_over_stride(h, w, k, s):
    (out,) = analyze_spec(one_layer(f"conv {k}x{k}/{s} 8 same", (h, w, 3))).rows
    assert out.output_shape == (math.ceil(h / s), math.ceil(w / s), 8)


@settings(max_examples=100, deadline=None)
@given(h=sizes, groups=st.sampled_from([1, 2, 4]), k=kernels)
def test_grouped_conv_divides_weights_by_groups(h, groups, k):
    cin, cout = 8 * groups, 4 * groups
    (out,) = analyze_spec(one_layer(f"conv {k}x{k} {cout} same groups={groups}", (h, h, cin))).rows
    assert out.params == k * k * (cin // groups) * cout + cout


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(3, 64),
    k=st.integers(2, 5),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    ceil=st.booleans(),
)
def test_pooling_rounding(n, k, s, p, ceil):
    if p * 2 > k:  # Caffe and PyTorch reject padding wider than half the window
        return
    rounding = "ceil" if ceil else "floor"
    row = f"maxpool {k}x{k}/{s} padding={p} rounding={rounding}"
    expected = ceil_pool_out(n, k, s, p) if ceil else conv_out(n, k, s, p, 1)
    text = one_layer(row, (n, n, 5))
    if expected < 1 or k > n + 2 * p:  # a window larger than the padded input is an error
        with pytest.raises(SpecError):
            analyze_spec(text)
        return
    (out,) = analyze_spec(text).rows
    assert out.output_shape == (expected, expected, 5)
    assert out.params == 0 and out.macs == 0


@pytest.mark.parametrize(
    "n, expected_floor, expected_ceil",
    [
        (112, 55, 56),  # GoogLeNet pool1: Caffe rounds up to 56
        (56, 27, 28),
        (13, 6, 6),  # AlexNet pool5 on 13x13
        (55, 27, 27),  # AlexNet pool1
    ],
)
def test_pooling_rounding_known_sizes(n, expected_floor, expected_ceil):
    for rounding, expected in (("floor", expected_floor), ("ceil", expected_ceil)):
        (out,) = analyze_spec(one_layer(f"maxpool 3x3/2 rounding={rounding}", (n, n, 1))).rows
        assert out.output_shape[0] == expected


@settings(max_examples=50, deadline=None)
@given(h=sizes, w=sizes, c=st.integers(1, 64), units=st.integers(1, 100))
def test_flatten_then_dense(h, w, c, units):
    text = f"name: t\ninput: [{h}, {w}, {c}]\nlayers:\n  - f: flatten\n  - d: dense {units}\n"
    flat, dense = analyze_spec(text).rows
    assert flat.output_shape == (1, 1, h * w * c)
    assert dense.params == h * w * c * units + units
    assert dense.macs == h * w * c * units


@settings(max_examples=50, deadline=None)
@given(h=sizes, c=st.integers(1, 64))
def test_batchnorm_counts_two_params_and_two_statistics_per_channel(h, c):
    (row,) = analyze_spec(one_layer("bn", (h, h, c))).rows
    assert (row.params, row.state, row.output_shape) == (2 * c, 2 * c, (h, h, c))


def test_zeropad_and_asymmetric_kernels():
    text = (
        "name: t\ninput: [17, 17, 768]\nlayers:\n  - pad: zeropad [[1, 2], [3, 4]]\n"
        "  - a: conv 1x7 192 padding=[0, 3]\n  - b: conv 7x1 192 padding=[3, 0]\n"
    )
    pad, a, b = analyze_spec(text).rows
    assert pad.output_shape == (20, 24, 768)
    assert a.output_shape == (20, 24, 192)
    assert a.params == 7 * 768 * 192 + 192
    assert b.output_shape == (20, 24, 192)


def test_concat_and_add_shapes():
    text = """
name: t
input: [8, 8, 16]
layers:
  - mix:
      concat:
        - conv 1x1 4
        - [conv 1x1 2, conv 3x3 6 same]
        - maxpool 3x3/1 padding=1
  - res:
      add:
        - conv 3x3 26 same
        - []
"""
    mix, res = analyze_spec(text).rows
    assert mix.output_shape == (8, 8, 4 + 6 + 16)
    assert mix.depth == 2
    assert res.output_shape == (8, 8, 26)
    assert res.params == 9 * 26 * 26 + 26
