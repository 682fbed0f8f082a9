"""upsample, conv_transpose, slice and channel_shuffle: values against NumPy loops written from
PyTorch's / torchvision's definitions, and shapes, costs and errors against their formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec import SpecError, analyze_spec
from netspec import flax_layers as fl
from netspec.check import check_against_flax

jax.config.update("jax_numpy_rank_promotion", "raise")


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 test data."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def kw(seed: int = 0) -> dict:
    return {"dtype": None, "param_dtype": jnp.float32, "rngs": nnx.Rngs(seed)}


def one_layer(row: str, size: tuple[int, int, int]) -> str:
    h, w, c = size
    return f"name: t\ninput: [{h}, {w}, {c}]\nlayers:\n  - x: {row}\n"


def analysis_error(row: str, size: tuple[int, int, int]) -> SpecError:
    with pytest.raises(SpecError) as info:
        analyze_spec(one_layer(row, size))
    return info.value


# ----------------------------------------------------------------------------- upsample


def torch_nearest_source(dst: int, size: int, out: int) -> int:
    """PyTorch's `nearest_idx` (aten/src/ATen/native/UpSample.h) for an output size: the source
    of output pixel `dst` is `min(floorf(dst * (float)size / out), size - 1)` in float32, with
    out == size and out == 2 * size special-cased to exact integer arithmetic."""
    if out == size:
        return dst
    if out == 2 * size:
        return dst >> 1
    scale = np.float32(size) / np.float32(out)
    return min(int(np.floor(np.float32(dst) * scale)), size - 1)


def nearest_reference(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """`F.interpolate(x, size=(out_h, out_w), mode="nearest")` on NHWC, pixel by pixel."""
    b, h, w, c = x.shape
    y = np.zeros((b, out_h, out_w, c), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            y[:, i, j] = x[:, torch_nearest_source(i, h, out_h), torch_nearest_source(j, w, out_w)]
    return y


def bilinear_reference(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """`F.interpolate(x, size=..., mode="bilinear", align_corners=False)` on NHWC, pixel by
    pixel: output pixel i samples source coordinate (i + 0.5) * in / out - 0.5 (half-pixel
    centres), clamped below at 0; the far neighbour is clamped to the last pixel."""
    b, h, w, c = x.shape
    y = np.zeros((b, out_h, out_w, c), np.float64)

    def taps(i: int, size: int, out: int) -> tuple[int, int, float]:
        src = max((i + 0.5) * size / out - 0.5, 0.0)
        low = math.floor(src)
        high = low + 1 if low < size - 1 else low
        return low, high, src - low

    for i in range(out_h):
        y0, y1, ly = taps(i, h, out_h)
        for j in range(out_w):
            x0, x1, lx = taps(j, w, out_w)
            top = (1 - lx) * x[:, y0, x0] + lx * x[:, y0, x1]
            bottom = (1 - lx) * x[:, y1, x0] + lx * x[:, y1, x1]
            y[:, i, j] = (1 - ly) * top + ly * bottom
    return y


@pytest.mark.parametrize("factor", [2, 3, (2, 3), (1, 4)])
def test_upsample_nearest_factor_repeats_pixels(factor: int | tuple[int, int]) -> None:
    x = randn(2, 5, 4, 3)
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    layer = fl.Upsample((5, 4, 3), factor=factor, **kw())
    expected = np.repeat(np.repeat(x, fh, axis=1), fw, axis=2)
    assert layer.out_shape == (5 * fh, 4 * fw, 3)
    np.testing.assert_array_equal(np.asarray(layer(jnp.asarray(x))), expected)


def test_upsample_default_factor_is_two() -> None:
    layer = fl.Upsample((3, 4, 2), **kw())
    x = randn(1, 3, 4, 2)
    assert layer.out_shape == (6, 8, 2)
    np.testing.assert_array_equal(
        np.asarray(layer(jnp.asarray(x))), np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    )


@pytest.mark.parametrize(
    ("in_hw", "size"),
    [((5, 4), (10, 8)), ((5, 4), (7, 13)), ((26, 14), (22, 46)), ((7, 9), (3, 4)), ((3, 3), 9)],
)
def test_upsample_nearest_size_matches_torch_rule(
    in_hw: tuple[int, int], size: int | tuple[int, int]
) -> None:
    """26 -> 22 and 14 -> 46 are sizes where PyTorch's float32 rounding differs from the exact
    floor(dst * in / out) for some pixels."""
    x = randn(2, *in_hw, 3, seed=1)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    layer = fl.Upsample((*in_hw, 3), size=size, **kw())
    assert layer.out_shape == (out_h, out_w, 3)
    np.testing.assert_array_equal(
        np.asarray(layer(jnp.asarray(x))), nearest_reference(x, out_h, out_w)
    )


def test_nearest_rule_is_the_exact_floor_but_for_float32_rounding() -> None:
    """The reference rule is floor(dst * in / out) up to float32 rounding: never more than one
    pixel off, equal on 26 -> 22 but for the pixels where rounding bites, and repeat-by-factor
    for whole factors up to 40 (PyTorch's float32 1/factor rounds down for 41)."""
    differs = 0
    for size, out in [(26, 22), (14, 46), (32, 82), (7, 3)]:
        for dst in range(out):
            exact = dst * size // out
            got = torch_nearest_source(dst, size, out)
            assert got in (exact - 1, exact)
            differs += got != exact
    assert differs > 0  # the test sizes above do exercise the rounding
    for factor in (3, 5, 7, 40):
        got = [torch_nearest_source(d, 12, 12 * factor) for d in range(12 * factor)]
        assert got == [d // factor for d in range(12 * factor)]


def test_upsample_bilinear_known_values() -> None:
    """[0, 1] doubled is [0, .25, .75, 1] (half-pixel centres, edges clamped); [0, 1, 2] resized
    to 2 samples 0.25 and 1.75 (no antialiasing)."""
    row = jnp.asarray([0.0, 1.0]).reshape(1, 1, 2, 1)
    up = fl.Upsample((1, 2, 1), factor=(1, 2), mode="bilinear", **kw())
    np.testing.assert_allclose(np.asarray(up(row)).ravel(), [0.0, 0.25, 0.75, 1.0], atol=1e-7)
    row = jnp.asarray([0.0, 1.0, 2.0]).reshape(1, 1, 3, 1)
    down = fl.Upsample((1, 3, 1), size=(1, 2), mode="bilinear", **kw())
    np.testing.assert_allclose(np.asarray(down(row)).ravel(), [0.25, 1.75], atol=1e-6)


@pytest.mark.parametrize(
    ("in_hw", "factor", "size"),
    [
        ((5, 4), 2, None),
        ((4, 6), 3, None),
        ((3, 5), (2, 4), None),
        ((5, 4), None, (9, 13)),
        ((7, 9), None, (4, 5)),
        ((1, 3), None, (4, 4)),
    ],
)
def test_upsample_bilinear_matches_torch_definition(
    in_hw: tuple[int, int], factor: int | tuple[int, int] | None, size: tuple[int, int] | None
) -> None:
    x = randn(2, *in_hw, 3, seed=2)
    layer = fl.Upsample((*in_hw, 3), factor=factor, size=size, mode="bilinear", **kw())
    out_h, out_w, _ = layer.out_shape
    np.testing.assert_allclose(
        np.asarray(layer(jnp.asarray(x))), bilinear_reference(x, out_h, out_w), atol=1e-5
    )


def test_upsample_bilinear_keeps_a_half_precision_dtype() -> None:
    x = randn(1, 4, 4, 2, seed=3)
    layer = fl.Upsample((4, 4, 2), mode="bilinear", **kw())
    y = layer(jnp.asarray(x, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), bilinear_reference(x, 8, 8), atol=0.05)


def test_upsample_shapes_and_cost() -> None:
    for row, out in [
        ("upsample", (16, 14, 3)),
        ("upsample 3", (24, 21, 3)),
        ("upsample [2, 1] bilinear", (16, 7, 3)),
        ("upsample size=[5, 9]", (5, 9, 3)),
        ("upsampling size=12 mode=bilinear", (12, 12, 3)),
    ]:
        (report,) = analyze_spec(one_layer(row, (8, 7, 3))).rows
        assert (report.output_shape, report.params, report.macs) == (out, 0, 0), row


def test_upsample_refuses_factor_and_size_together() -> None:
    error = analysis_error("upsample 2 size=[4, 4]", (8, 8, 3))
    assert error.field == "size"
    assert "not both" in error.message and "drop" in (error.hint or "")


# ----------------------------------------------------------------------------- conv_transpose


def conv_transpose_reference(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pad_before: tuple[int, int],
    out_hw: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """A transposed convolution by scattering, on NHWC input and a PyTorch weight
    `(C_in, C_out // groups, kh, kw)`: input pixel (i, j) of channel c adds
    `x[i, j, c] * weight[c, :, a, b]` to output pixel `(i * sh - top + a, j * sw - left + b)`
    of the output channels of c's group; pixels that land outside `out_hw` are dropped."""
    b, h, w, cin = x.shape
    _, per_group, kh, kw_ = weight.shape
    y = np.zeros((b, *out_hw, per_group * groups), np.float64)
    for c in range(cin):
        g = c // (cin // groups)
        for i in range(h):
            for j in range(w):
                for a in range(kh):
                    oi = i * stride[0] - pad_before[0] + a
                    if not 0 <= oi < out_hw[0]:
                        continue
                    for bb in range(kw_):
                        oj = j * stride[1] - pad_before[1] + bb
                        if 0 <= oj < out_hw[1]:
                            y[:, oi, oj, g * per_group : (g + 1) * per_group] += (
                                x[:, i, j, c, None] * weight[c, :, a, bb]
                            )
    if bias is not None:
        y += bias
    return y


def torch_transpose_out(n: int, k: int, s: int, p: int, op: int) -> int:
    """PyTorch's ConvTranspose2d documentation: (n - 1) * s - 2p + k + output_padding."""
    return (n - 1) * s - 2 * p + k + op


def build_transpose(in_shape: tuple[int, int, int], filters: int, **fields: object):
    """A ConvTranspose with a random PyTorch-layout weight and bias loaded into it."""
    layer = fl.ConvTranspose(in_shape, filters, **fields, **kw())
    groups = int(fields.get("groups", 1))  # type: ignore[call-overload]
    kh, kw_ = layer.kernel.shape[:2]
    weight = randn(in_shape[2], filters // groups, kh, kw_, seed=5)  # PyTorch's layout
    layer.kernel[...] = jnp.asarray(weight.transpose(2, 3, 0, 1))  # documented mapping
    bias = None
    if layer.bias is not None:
        bias = randn(filters, seed=6)
        layer.bias[...] = jnp.asarray(bias)
    return layer, weight, bias


@pytest.mark.parametrize(
    ("in_shape", "filters", "fields"),
    [
        ((4, 5, 4), 6, {"kernel": 3, "stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
        ((3, 3, 2), 3, {"kernel": 4, "stride": 2, "padding": 1}),
        ((3, 4, 3), 2, {"kernel": (3, 2), "stride": (2, 3), "padding": (1, 0)}),
        ((2, 3, 2), 4, {"kernel": 2, "stride": 2, "bias": False}),
        ((3, 3, 4), 4, {"kernel": 3, "stride": 1, "padding": 1, "groups": 4}),
        ((3, 2, 2), 2, {"kernel": 1, "stride": 3, "output_padding": (2, 1)}),
        ((6, 7, 1), 1, {"kernel": 3, "stride": 1, "padding": 3}),  # crops past the kernel
    ],
)
def test_conv_transpose_matches_pytorch_definition(
    in_shape: tuple[int, int, int], filters: int, fields: dict
) -> None:
    layer, weight, bias = build_transpose(in_shape, filters, **fields)
    kh, kw_ = layer.kernel.shape[:2]
    (sh, sw), (ph, pw) = [
        (v, v) if isinstance(v, int) else v
        for v in (fields.get("stride", 1), fields.get("padding", 0))
    ]
    oph, opw = (lambda v: (v, v) if isinstance(v, int) else v)(fields.get("output_padding", 0))
    out_hw = (
        torch_transpose_out(in_shape[0], kh, sh, ph, oph),
        torch_transpose_out(in_shape[1], kw_, sw, pw, opw),
    )
    assert layer.out_shape == (*out_hw, filters)
    x = randn(2, *in_shape, seed=7)
    expected = conv_transpose_reference(
        x, weight, bias, (sh, sw), (ph, pw), out_hw, int(fields.get("groups", 1))
    )
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))), expected, atol=1e-4)


def test_conv_transpose_known_values() -> None:
    """A 2x2/2 kernel of ones spreads each input pixel over a 2x2 block."""
    layer = fl.ConvTranspose((2, 2, 1), 1, kernel=2, stride=2, bias=False, **kw())
    layer.kernel[...] = jnp.ones((2, 2, 1, 1))
    x = jnp.asarray([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    expected = np.kron(np.asarray([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2)))
    np.testing.assert_array_equal(np.asarray(layer(x))[0, :, :, 0], expected)


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (4, 2), (1, 2), (5, 1), (2, 3), (3, 3)])
def test_conv_transpose_same_matches_tensorflow_definition(kernel: int, stride: int) -> None:
    """`same` is the gradient of TensorFlow's SAME conv2d on an input of size n * stride: that
    conv pads max(k - s, 0) in all, the smaller half first, so output pixel o * s + a - before
    gets x[o] * w[a], for an output of exactly n * stride pixels."""
    layer, weight, bias = build_transpose(
        (3, 4, 2), 2, kernel=kernel, stride=stride, padding="same"
    )
    before = max(kernel - stride, 0) // 2
    out_hw = (3 * stride, 4 * stride)
    assert layer.out_shape == (*out_hw, 2)
    x = randn(2, 3, 4, 2, seed=8)
    expected = conv_transpose_reference(
        x, weight, bias, (stride, stride), (before, before), out_hw, 1
    )
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))), expected, atol=1e-4)


def test_conv_transpose_activation_and_dtype() -> None:
    layer, weight, bias = build_transpose((3, 3, 2), 2, kernel=3, stride=2, activation="relu")
    x = randn(1, 3, 3, 2, seed=9)
    expected = conv_transpose_reference(x, weight, bias, (2, 2), (0, 0), (7, 7), 1)
    np.testing.assert_allclose(
        np.asarray(layer(jnp.asarray(x))), np.maximum(expected, 0.0), atol=1e-4
    )
    half = fl.ConvTranspose((3, 3, 2), 2, 3, 2, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert half(jnp.asarray(x)).dtype == jnp.bfloat16


def test_conv_transpose_parameter_layout() -> None:
    """kernel (kh, kw, C_in, filters / groups) and bias (filters,)."""
    layer = fl.ConvTranspose((4, 4, 6), 8, kernel=(3, 2), groups=2, **kw())
    assert layer.kernel.shape == (3, 2, 6, 4)
    assert layer.bias is not None and layer.bias.shape == (8,)
    assert fl.ConvTranspose((4, 4, 6), 8, 3, bias=False, **kw()).bias is None


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    cin=st.sampled_from([2, 4, 6]),
    cout=st.sampled_from([2, 4, 8]),
    kh=st.integers(1, 5),
    kw_=st.integers(1, 5),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    op=st.integers(0, 2),
    groups=st.sampled_from([1, 2]),
    bias=st.booleans(),
)
def test_conv_transpose_shape_and_cost_formulas(h, w, cin, cout, kh, kw_, s, p, op, groups, bias):
    """Output size as PyTorch documents it; params k*k*C_in*C_out/groups (+ C_out); MACs as
    fvcore counts a transposed conv: H_in * W_in * C_in * (C_out / groups) * kh * kw."""
    row = (
        f"deconv {kh}x{kw_}/{s} {cout} padding={p} output_padding={op} groups={groups} "
        f"bias={'true' if bias else 'false'}"
    )
    oh, ow = torch_transpose_out(h, kh, s, p, op), torch_transpose_out(w, kw_, s, p, op)
    text = one_layer(row, (h, w, cin))
    if op >= s or oh < 1 or ow < 1:
        with pytest.raises(SpecError) as info:
            analyze_spec(text)
        assert info.value.field == ("output_padding" if op >= s else "padding")
        return
    (report,) = analyze_spec(text).rows
    weights = kh * kw_ * cin * cout // groups
    assert report.output_shape == (oh, ow, cout)
    assert report.params == weights + (cout if bias else 0)
    assert report.macs == h * w * cin * (cout // groups) * kh * kw_


@pytest.mark.parametrize(("kernel", "stride"), [(4, 2), (3, 2), (1, 4), (7, 3)])
def test_conv_transpose_same_is_input_times_stride(kernel: int, stride: int) -> None:
    (report,) = analyze_spec(
        one_layer(f"conv_transpose {kernel}x{kernel}/{stride} 4 same", (5, 3, 2))
    ).rows
    assert report.output_shape == (5 * stride, 3 * stride, 4)


@pytest.mark.parametrize(
    ("row", "size", "field", "words"),
    [
        ("conv_transpose 3x3/2 8 output_padding=2", (4, 4, 8), "output_padding", "smaller"),
        ("conv_transpose 3x3/2 8 same output_padding=1", (4, 4, 8), "output_padding", "same"),
        ("conv_transpose 3x3 8 groups=3", (4, 4, 16), "groups", "divisible"),
        ("conv_transpose 3x3 9 groups=2", (4, 4, 16), "filters", "divisible"),
        ("conv_transpose 3x3 8 padding=3", (2, 2, 4), "padding", "crops"),
    ],
)
def test_conv_transpose_errors_name_the_field(
    row: str, size: tuple[int, int, int], field: str, words: str
) -> None:
    error = analysis_error(row, size)
    assert error.field == field
    assert words in error.message and error.hint


def test_conv_transpose_aliases_and_window_token() -> None:
    for name in ("conv_transpose", "deconv", "convtranspose", "conv2d_transpose"):
        (report,) = analyze_spec(one_layer(f"{name} 4x4/2 8 padding=1", (7, 5, 3))).rows
        assert report.output_shape == (14, 10, 8)


# ----------------------------------------------------------------------------- slice


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [(0, 5, slice(0, 5)), (5, None, slice(5, 12)), (-4, None, slice(8, 12)), (2, -3, slice(2, 9))],
)
def test_slice_takes_the_channel_range(start: int, stop: int | None, expected: slice) -> None:
    x = randn(2, 3, 4, 12)
    layer = fl.Slice((3, 4, 12), start, stop, **kw())
    np.testing.assert_array_equal(np.asarray(layer(jnp.asarray(x))), x[..., expected])
    (report,) = analyze_spec(
        one_layer(f"slice {start}" + ("" if stop is None else f" {stop}"), (3, 4, 12))
    ).rows
    assert report.output_shape == layer.out_shape == (3, 4, len(range(12)[expected]))
    assert (report.params, report.macs) == (0, 0)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("slice 12", "start"),
        ("slice -13", "start"),
        ("slice 0 13", "stop"),
        ("slice 5 5", "stop"),
        ("slice 6 2", "stop"),
        ("slice 0 -12", "stop"),
    ],
)
def test_slice_out_of_range_names_the_field(row: str, field: str) -> None:
    error = analysis_error(row, (4, 4, 12))
    assert error.field == field
    assert "12 channels" in error.message or "no channels" in error.message
    assert error.hint


@pytest.mark.parametrize(("parts", "index"), [(2, 0), (2, 1), (3, 2), (4, 1), (1, 0)])
def test_split_keeps_one_of_numpys_equal_pieces(parts: int, index: int) -> None:
    x = randn(2, 3, 4, 12)
    layer = fl.Split((3, 4, 12), parts, index, **kw())
    expected = np.split(x, parts, axis=-1)[index]
    np.testing.assert_array_equal(np.asarray(layer(jnp.asarray(x))), expected)
    (report,) = analyze_spec(one_layer(f"split {parts} {index}", (3, 4, 12))).rows
    assert report.output_shape == layer.out_shape == expected.shape[1:]


@pytest.mark.parametrize(("row", "field"), [("split 5 0", "parts"), ("split 2 2", "index")])
def test_split_errors_name_the_field(row: str, field: str) -> None:
    error = analysis_error(row, (4, 4, 12))
    assert error.field == field
    assert error.hint


# ----------------------------------------------------------------------------- channel_shuffle


def torchvision_channel_shuffle(x_nhwc: np.ndarray, groups: int) -> np.ndarray:
    """torchvision.models.shufflenetv2.channel_shuffle on NCHW: view(b, groups, c // groups, h,
    w), transpose(1, 2), flatten the channels back; here wrapped to and from NHWC."""
    x = x_nhwc.transpose(0, 3, 1, 2)
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(b, c, h, w)
    return x.transpose(0, 2, 3, 1)


@pytest.mark.parametrize(("channels", "groups"), [(6, 2), (12, 3), (12, 4), (8, 1), (8, 8)])
def test_channel_shuffle_matches_torchvision(channels: int, groups: int) -> None:
    x = randn(2, 3, 4, channels)
    layer = fl.ChannelShuffle((3, 4, channels), groups, **kw())
    np.testing.assert_array_equal(
        np.asarray(layer(jnp.asarray(x))), torchvision_channel_shuffle(x, groups)
    )


def test_channel_shuffle_order() -> None:
    """Six channels in two groups (0 1 2 | 3 4 5) interleave as 0 3 1 4 2 5."""
    x = jnp.arange(6.0).reshape(1, 1, 1, 6)
    y = fl.ChannelShuffle((1, 1, 6), 2, **kw())(x)
    assert np.asarray(y).ravel().tolist() == [0, 3, 1, 4, 2, 5]


def test_channel_shuffle_needs_divisible_channels() -> None:
    error = analysis_error("channel_shuffle 3", (4, 4, 16))
    assert error.field == "groups"
    assert "16 channels" in error.message
    assert "1, 2, 4, 8 or 16" in (error.hint or "")
    (report,) = analyze_spec(one_layer("shuffle 4", (4, 4, 16))).rows
    assert (report.output_shape, report.params, report.macs) == ((4, 4, 16), 0, 0)


# ----------------------------------------------------------------------------- through the pipeline

DECODER = """\
name: spatial
input: [12, 10, 3]
layers:
  - stem: conv 3x3/2 8 same relu
  - left: slice 0 4
  - right: slice 4 from=stem
  - branch: conv 1x1 4 relu
  - join: concat from=[left, branch]
  - shuffle: channel_shuffle 2
  - up: conv_transpose 4x4/2 8 relu padding=1
  - grow: deconv 3x3/2 6 output_padding=1 padding=1 groups=2
  - fixed: upsample bilinear size=[30, 20]
  - twice: upsample [1, 2]
  - head: conv 1x1 5
"""


def test_a_spec_with_every_spatial_layer_compiles_and_checks_against_flax() -> None:
    compiled = netspec.compile(DECODER)
    shapes = {node.name: node.output_shape for node in compiled.report.nodes}
    assert shapes["stem"] == (6, 5, 8)
    assert shapes["join"] == shapes["shuffle"] == (6, 5, 8)
    assert shapes["up"] == (12, 10, 8)
    assert shapes["grow"] == (24, 20, 6)
    assert shapes["fixed"] == (30, 20, 6)
    assert shapes["twice"] == (30, 40, 6)
    assert check_against_flax(compiled).layers == len(compiled.report.nodes)
