"""The Flax NNX runtime layers against independent references (lax calls, NumPy loops)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from netspec import flax_layers as fl
from netspec.shapes import resolve_padding, window_output

jax.config.update("jax_numpy_rank_promotion", "raise")

Pads = tuple[tuple[int, int], tuple[int, int]]


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 test data."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def kw(seed: int = 0) -> dict:
    return {"dtype": None, "param_dtype": jnp.float32, "rngs": nnx.Rngs(seed)}


# ----------------------------------------------------------------------------- activations


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


NP_ACTIVATIONS = {
    "none": lambda x: x,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "tanh": np.tanh,
    "sigmoid": np_sigmoid,
    "softmax": np_softmax,
    "gelu": lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))),
    "silu": lambda x: x * np_sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "softplus": lambda x: np.log1p(np.exp(x)),
}


@pytest.mark.parametrize("fn", sorted(NP_ACTIVATIONS))
def test_activation_matches_numpy(fn: str) -> None:
    x = randn(2, 3, 4, 5, scale=4.0)
    layer = fl.Activation((3, 4, 5), fn, **kw())
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    expected = NP_ACTIVATIONS[fn](x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fl.activate(jnp.asarray(x), fn)), np.asarray(y))


def test_activation_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        fl.Activation((1, 1, 3), "swish")


# ----------------------------------------------------------------------------- convolution


def lax_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: tuple[int, int],
    pads: Pads,
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    y = jax.lax.conv_general_dilated(
        jnp.asarray(x),
        jnp.asarray(w),
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST,
    )
    y = np.asarray(y, np.float64)
    return y if b is None else y + b.reshape(1, 1, 1, -1)


def as_pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def build(make, seed: int = 1) -> nnx.Module:
    """Construct a layer abstractly, then give its parameters NumPy normal values.

    nnx.eval_shape traces the real constructor without compiling a PRNG program per kernel
    shape (about a second each on CPU), and non-zero biases get tested too.
    """
    layer = nnx.eval_shape(make)
    gen = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda s: jnp.asarray(gen.standard_normal(s.shape).astype(s.dtype) * 0.5),
        nnx.state(layer, nnx.Param),
    )
    nnx.update(layer, params)
    return layer


CONV_CASES = [
    # in_shape, filters, kernel, stride, padding, explicit pads, dilation, groups, bias, activation
    ((9, 9, 3), 4, 3, 1, "valid", ((0, 0), (0, 0)), 1, 1, True, "none"),
    ((9, 8, 4), 6, (3, 2), (2, 1), 1, ((1, 1), (1, 1)), 1, 2, True, "relu"),
    ((10, 7, 4), 4, 3, 2, (2, 1), ((2, 2), (1, 1)), (2, 1), 4, False, "none"),
    ((8, 9, 6), 6, (1, 3), 1, ((0, 1), (2, 0)), ((0, 1), (2, 0)), 1, 3, True, "gelu"),
    ((11, 11, 2), 3, 5, 3, ((2, 1), (0, 3)), ((2, 1), (0, 3)), (1, 2), 1, True, "tanh"),
]


@pytest.mark.parametrize(
    (
        "in_shape",
        "filters",
        "kernel",
        "stride",
        "padding",
        "pads",
        "dilation",
        "groups",
        "bias",
        "act",
    ),
    CONV_CASES,
)
def test_conv_matches_lax(
    in_shape, filters, kernel, stride, padding, pads, dilation, groups, bias, act
) -> None:
    layer = build(
        lambda: fl.Conv(
            in_shape,
            filters,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            activation=act,
            **kw(),
        )
    )
    x = randn(2, *in_shape, seed=2)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    b = None if layer.bias is None else np.asarray(layer.bias[...])
    expected = lax_conv(
        x, np.asarray(layer.kernel[...]), b, as_pair(stride), pads, as_pair(dilation), groups
    )
    expected = NP_ACTIVATIONS[act](expected)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def naive_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: tuple[int, int],
    pads: Pads,
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """Direct float64 loops of the grouped, dilated, strided cross-correlation."""
    x = np.pad(x.astype(np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
    w = w.astype(np.float64)
    batch, height, width, _ = x.shape
    kh, kw_, cin_g, filters = w.shape
    fg = filters // groups
    out_h = (height - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (width - dilation[1] * (kw_ - 1) - 1) // stride[1] + 1
    y = np.zeros((batch, out_h, out_w, filters))
    for n in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                for f in range(filters):
                    g = f // fg
                    total = b[f]
                    for a in range(kh):
                        for c in range(kw_):
                            for ci in range(cin_g):
                                total += (
                                    x[
                                        n,
                                        i * stride[0] + a * dilation[0],
                                        j * stride[1] + c * dilation[1],
                                        g * cin_g + ci,
                                    ]
                                    * w[a, c, ci, f]
                                )
                    y[n, i, j, f] = total
    return y


def test_conv_matches_naive_loop() -> None:
    """A grouped, dilated, strided conv with asymmetric kernel and padding, then relu."""
    layer = build(
        lambda: fl.Conv(
            (7, 6, 4),
            6,
            (3, 2),
            stride=(2, 1),
            padding=((1, 0), (2, 1)),
            dilation=(1, 2),
            groups=2,
            activation="relu",
            **kw(),
        )
    )
    x = randn(2, 7, 6, 4, seed=3)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (3, 7, 6)
    expected = naive_conv(
        x,
        np.asarray(layer.kernel[...]),
        np.asarray(layer.bias[...]),
        (2, 1),
        ((1, 0), (2, 1)),
        (1, 2),
        2,
    )
    np.testing.assert_allclose(np.asarray(y), np.maximum(expected, 0), rtol=1e-5, atol=1e-5)


def tf_same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME rule: output ceil(n/s); the odd pixel of padding goes at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return (total // 2, total - total // 2)


@pytest.mark.parametrize(
    ("n", "k", "s", "d"),
    [
        (7, 3, 1, 1),
        (8, 3, 2, 1),
        (7, 3, 2, 1),
        (9, 4, 2, 1),
        (6, 1, 2, 1),
        (10, 3, 1, 2),
        (5, 7, 3, 1),
    ],
)
def test_conv_same_padding(n: int, k: int, s: int, d: int) -> None:
    in_shape = (n, n + 1, 3)
    layer = build(lambda: fl.Conv(in_shape, 4, k, stride=s, padding="same", dilation=d, **kw()))
    x = randn(2, *in_shape, seed=4)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (-(-n // s), -(-(n + 1) // s), 4)
    pads = (tf_same_pads(n, k, s, d), tf_same_pads(n + 1, k, s, d))
    expected = lax_conv(
        x, np.asarray(layer.kernel[...]), np.asarray(layer.bias[...]), (s, s), pads, (d, d), 1
    )
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_conv_params_live_on_the_module() -> None:
    layer = build(lambda: fl.Conv((8, 8, 4), 6, 3, groups=2, bias=False, **kw()))
    paths = {path for path, _ in nnx.to_flat_state(nnx.state(layer, nnx.Param))}
    assert paths == {("kernel",)}
    assert layer.kernel.shape == (3, 3, 2, 6)


def test_conv_rejects_bad_groups_and_windows() -> None:
    with pytest.raises(ValueError, match=r"input channels \(3\) are not divisible by groups"):
        fl.Conv((8, 8, 3), 4, 3, groups=2, **kw())
    with pytest.raises(ValueError, match=r"filters \(3\) must be divisible by groups \(2\)"):
        fl.Conv((8, 8, 4), 3, 3, groups=2, **kw())
    with pytest.raises(ValueError, match=r"window .* is larger than the input height 2"):
        fl.Conv((2, 8, 3), 4, 3, **kw())


# ----------------------------------------------------------------------------- dense


def test_dense_matches_matmul() -> None:
    layer = build(lambda: fl.Dense((1, 1, 12), 5, activation="sigmoid", **kw()))
    x = randn(3, 1, 1, 12, seed=5)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (1, 1, 5)
    w, b = np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)
    expected = np_sigmoid(x.reshape(3, 12).astype(np.float64) @ w + b).reshape(3, 1, 1, 5)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_dense_without_bias_and_spatial_input() -> None:
    layer = build(lambda: fl.Dense((1, 1, 4), 2, bias=False, **kw()))
    assert layer.bias is None
    x = randn(2, 1, 1, 4, seed=6)
    expected = x.reshape(2, 4) @ np.asarray(layer.kernel[...])
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x)))[:, 0, 0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="flat"):
        fl.Dense((2, 2, 4), 2, **kw())


# ----------------------------------------------------------------------------- LRN


def naive_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Caffe's across-channel LRN in float64, zero beyond the edge channels."""
    x = x.astype(np.float64)
    channels = x.shape[-1]
    half = size // 2
    y = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - half), min(channels, c + half + 1)
        total = (x[..., lo:hi] ** 2).sum(axis=-1)
        y[..., c] = x[..., c] / (k + alpha / size * total) ** beta
    return y


@pytest.mark.parametrize(
    ("size", "alpha", "beta", "k", "scale"),
    [(5, 1e-4, 0.75, 1.0, 60.0), (5, 1e-4, 0.75, 2.0, 60.0), (5, 0.5, 0.75, 1.0, 1.0),
     (3, 1.0, 0.5, 2.0, 2.0), (1, 0.3, 0.75, 1.0, 1.0)],
)  # fmt: skip
def test_lrn_matches_caffe_formula(size: int, alpha: float, beta: float, k: float, scale: float):
    x = randn(2, 3, 2, 7, seed=7, scale=scale)
    layer = fl.LRN((3, 2, 7), size=size, alpha=alpha, beta=beta, k=k)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    expected = naive_lrn(x, size, alpha, beta, k)
    assert not np.allclose(expected, x / k**beta, rtol=1e-3)  # the normalisation matters
    np.testing.assert_allclose(np.asarray(y), expected, rtol=2e-5, atol=1e-6)


def test_lrn_keeps_dtype() -> None:
    x = jnp.asarray(randn(1, 2, 2, 6, seed=8)).astype(jnp.bfloat16)
    assert fl.LRN((2, 2, 6))(x).dtype == jnp.bfloat16


# ----------------------------------------------------------------------------- pooling


def torch_output_size(n: int, k: int, s: int, lo: int, hi: int, ceil: bool) -> int:
    """PyTorch's pooling_output_shape, generalised to unequal pads."""
    out = (n + lo + hi - k + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + lo:
        out -= 1
    return out


def naive_pool(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: Pads,
    ceil: bool,
    mode: str,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Max or average pooling as PyTorch/Caffe loops: padding never wins a max; an average
    divides by the window clipped to the padded input (or by its real cells only)."""
    x = x.astype(np.float64)
    batch, height, width, channels = x.shape
    out_h = torch_output_size(height, kernel[0], stride[0], *pads[0], ceil)
    out_w = torch_output_size(width, kernel[1], stride[1], *pads[1], ceil)
    y = np.zeros((batch, out_h, out_w, channels))
    for i in range(out_h):
        h_start = i * stride[0] - pads[0][0]
        h_end = min(h_start + kernel[0], height + pads[0][1])
        h0, h1 = max(h_start, 0), min(h_end, height)
        for j in range(out_w):
            w_start = j * stride[1] - pads[1][0]
            w_end = min(w_start + kernel[1], width + pads[1][1])
            w0, w1 = max(w_start, 0), min(w_end, width)
            window = x[:, h0:h1, w0:w1, :]
            if mode == "max":
                y[:, i, j] = window.max(axis=(1, 2))
            else:
                full = (h_end - h_start) * (w_end - w_start)
                real = (h1 - h0) * (w1 - w0)
                y[:, i, j] = window.sum(axis=(1, 2)) / (full if count_include_pad else real)
    return y


POOL_CASES = [
    # n (height; width is n + 1), kernel, stride, spec padding, explicit pads, rounding
    (112, 3, 2, "valid", ((0, 0), (0, 0)), "ceil"),  # GoogLeNet: 112 -> 56
    (112, 3, 2, "valid", ((0, 0), (0, 0)), "floor"),  # 112 -> 55
    (6, 3, 2, 0, ((0, 0), (0, 0)), "ceil"),  # a partial last window
    (7, 3, 2, 1, ((1, 1), (1, 1)), "ceil"),
    (5, 2, 2, 1, ((1, 1), (1, 1)), "ceil"),  # a window that would start in the padding: dropped
    (8, 3, 3, 1, ((1, 1), (1, 1)), "ceil"),
    (10, 4, 3, ((1, 2), (0, 1)), ((1, 2), (0, 1)), "floor"),
    (10, 4, 3, ((1, 2), (0, 1)), ((1, 2), (0, 1)), "ceil"),
    (14, 5, 3, "valid", ((0, 0), (0, 0)), "floor"),  # GoogLeNet's auxiliary 5x5/3 average
    (9, 3, 2, "same", ((1, 1), None), "floor"),
    (5, 3, 1, 1, ((1, 1), (1, 1)), "floor"),
]


@pytest.mark.parametrize(("n", "k", "s", "padding", "pads", "rounding"), POOL_CASES)
@pytest.mark.parametrize(("mode", "include"), [("max", True), ("avg", True), ("avg", False)])
def test_pool_matches_torch_semantics(n, k, s, padding, pads, rounding, mode, include) -> None:
    if pads[1] is None:  # "same": TF's rule on each axis
        pads = (tf_same_pads(n, k, s, 1), tf_same_pads(n + 1, k, s, 1))
    cls = fl.MaxPool if mode == "max" else fl.AvgPool
    layer = cls(
        (n, n + 1, 2),
        kernel=k,
        stride=s,
        padding=padding,
        rounding=rounding,
        count_include_pad=include,
        **kw(),
    )
    x = randn(2, n, n + 1, 2, seed=9) - 3.0  # all-negative maxima: a zero pad would win
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    expected = naive_pool(x, (k, k), (s, s), pads, rounding == "ceil", mode, include)
    assert y.shape == expected.shape
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_googlenet_pool_sizes() -> None:
    assert fl.MaxPool((112, 112, 64), 3, 2, rounding="ceil").out_shape == (56, 56, 64)
    assert fl.MaxPool((112, 112, 64), 3, 2).out_shape == (55, 55, 64)
    assert fl.AvgPool((7, 7, 1024), 7, 1).out_shape == (1, 1, 1024)


def test_pool_stride_defaults_to_kernel_and_rectangles() -> None:
    layer = fl.AvgPool((6, 9, 1), kernel=(2, 3))
    x = randn(1, 6, 9, 1, seed=10)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (3, 3, 1)
    np.testing.assert_allclose(
        np.asarray(y)[0, :, :, 0], x[0, :, :, 0].reshape(3, 2, 3, 3).mean(axis=(1, 3)), rtol=1e-6
    )


def test_global_avgpool_matches_mean() -> None:
    x = randn(2, 5, 4, 3, seed=11)
    layer = fl.GlobalAvgPool((5, 4, 3))
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (1, 1, 3)
    np.testing.assert_allclose(np.asarray(y), x.mean(axis=(1, 2), keepdims=True), rtol=1e-6)


# ----------------------------------------------------------------------------- batch norm


def test_batchnorm_train_and_eval_match_numpy() -> None:
    layer = fl.BatchNorm((3, 4, 5), eps=1e-3, **kw())
    gamma, beta = randn(5, seed=12), randn(5, seed=13)
    layer.scale[...] = jnp.asarray(gamma)
    layer.bias[...] = jnp.asarray(beta)
    x = randn(4, 3, 4, 5, seed=14, scale=2.0) + 1.5
    x64 = x.astype(np.float64)

    y = layer(jnp.asarray(x), train=True)
    assert layer.out_shape == y.shape[1:]
    mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))  # biased variance
    np.testing.assert_allclose(
        np.asarray(y), (x64 - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-4, atol=1e-5
    )
    running_mean, running_var = 0.1 * mean, 0.9 * 1.0 + 0.1 * var
    np.testing.assert_allclose(np.asarray(layer.mean[...]), running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.var[...]), running_var, rtol=1e-5)

    x2 = randn(3, 3, 4, 5, seed=15)
    y2 = layer(jnp.asarray(x2))  # eval: running statistics, which stay put
    expected = (x2 - running_mean) / np.sqrt(running_var + 1e-3) * gamma + beta
    np.testing.assert_allclose(np.asarray(y2), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.mean[...]), running_mean, rtol=1e-5, atol=1e-6)


def test_batchnorm_momentum_and_no_affine() -> None:
    layer = fl.BatchNorm((2, 2, 3), momentum=0.5, scale=False, center=False)
    assert layer.scale is None and layer.bias is None
    assert not nnx.to_flat_state(nnx.state(layer, nnx.Param))
    x = randn(5, 2, 2, 3, seed=16).astype(np.float64)
    y = layer(jnp.asarray(x, jnp.float32), train=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(y), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.var[...]), 0.5 + 0.5 * var, rtol=1e-5)


# ----------------------------------------------------------------------------- dropout


def test_dropout_eval_is_identity_and_train_drops() -> None:
    layer = fl.Dropout((8, 8, 16), 0.3, **kw())
    x = jnp.ones((4, 8, 8, 16))
    y_eval = layer(x)
    assert layer.out_shape == y_eval.shape[1:]
    np.testing.assert_array_equal(np.asarray(y_eval), np.asarray(x))

    first, second = np.asarray(layer(x, train=True)), np.asarray(layer(x, train=True))
    for y in (first, second):
        assert abs((y == 0).mean() - 0.3) < 0.03
        np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert (first != second).any()  # under nnx.jit too: see test_group_trees_work_with_nnx_apis


def test_dropout_rngs() -> None:
    assert fl.Dropout((1, 1, 4), 0.0)(jnp.ones((2, 1, 1, 4)), train=True).shape == (2, 1, 1, 4)
    with pytest.raises(ValueError, match="rngs"):
        fl.Dropout((1, 1, 4), 0.5)


# ----------------------------------------------------------------------------- reshaping, merging


def test_flatten_is_row_major() -> None:
    x = randn(2, 3, 4, 5, seed=17)
    layer = fl.Flatten((3, 4, 5))
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:] == (1, 1, 60)
    np.testing.assert_array_equal(np.asarray(y), x.reshape(2, 1, 1, 60))


@pytest.mark.parametrize(
    ("padding", "pads"),
    [(2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))), (((0, 2), (3, 1)), ((0, 2), (3, 1)))],
)
def test_zeropad_matches_np_pad(padding, pads: Pads) -> None:
    x = randn(2, 3, 4, 2, seed=18)
    layer = fl.ZeroPad((3, 4, 2), padding)
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    np.testing.assert_array_equal(np.asarray(y), np.pad(x, ((0, 0), *pads, (0, 0))))


def test_concat_and_add() -> None:
    a, b, c = randn(2, 3, 3, 2, seed=19), randn(2, 3, 3, 5, seed=20), randn(2, 3, 3, 2, seed=21)
    concat = fl.Concat([(3, 3, 2), (3, 3, 5), (3, 3, 2)], **kw())
    y = concat([jnp.asarray(a), jnp.asarray(b), jnp.asarray(c)])
    assert concat.out_shape == y.shape[1:] == (3, 3, 9)
    np.testing.assert_array_equal(np.asarray(y), np.concatenate([a, b, c], axis=-1))

    add = fl.Add([(3, 3, 2), (3, 3, 2)], **kw())
    y = add([jnp.asarray(a), jnp.asarray(c)])
    assert add.out_shape == y.shape[1:]
    np.testing.assert_allclose(np.asarray(y), a + c, rtol=1e-6)

    with pytest.raises(ValueError):
        fl.Concat([(3, 3, 2), (4, 3, 2)])
    with pytest.raises(ValueError):
        fl.Add([(3, 3, 2), (3, 3, 3)])


# ----------------------------------------------------------------------------- NNX integration


class Inception(nnx.Module):
    """A miniature of what generated code builds: branches hung on Groups after creation."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        kw = {"dtype": None, "param_dtype": jnp.float32, "rngs": rngs}
        self.stem = fl.Conv((8, 8, 3), 4, 3, padding="same", activation="relu", **kw)
        self.bn = fl.BatchNorm(self.stem.out_shape, **kw)
        self.b1 = fl.Group()
        self.b1.conv = fl.Conv(self.stem.out_shape, 2, 1, **kw)
        self.b3 = fl.Group()
        self.b3.reduce = fl.Conv(self.stem.out_shape, 2, 1, activation="relu", **kw)
        self.b3.conv = fl.Conv(self.b3.reduce.out_shape, 3, 3, padding=1, **kw)
        self.cat = fl.Concat([self.b1.conv.out_shape, self.b3.conv.out_shape], **kw)
        self.pool = fl.MaxPool(self.cat.out_shape, 3, 2, rounding="ceil", **kw)
        self.flat = fl.Flatten(self.pool.out_shape, **kw)
        self.drop = fl.Dropout(self.flat.out_shape, 0.5, **kw)
        self.fc = fl.Dense(self.flat.out_shape, 3, **kw)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = self.bn(self.stem(x, train), train)
        y = self.cat([self.b1.conv(y, train), self.b3.conv(self.b3.reduce(y, train), train)])
        return self.fc(self.drop(self.flat(self.pool(y, train), train), train), train)


def test_group_trees_work_with_nnx_apis() -> None:
    model = Inception(nnx.Rngs(0))
    x = jnp.asarray(randn(2, 8, 8, 3, seed=22))
    paths = {"/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert {"b3/reduce/kernel", "b3/conv/bias", "b1/conv/kernel", "fc/kernel"} <= paths

    graphdef, state = nnx.split(model)
    hash(graphdef)  # static attributes are plain hashable values
    clone = nnx.merge(graphdef, state)
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(model(x)))

    abstract = nnx.eval_shape(lambda: Inception(nnx.Rngs(1)))
    assert abstract.b3.conv.kernel.shape == (3, 3, 2, 3)
    other = Inception(nnx.Rngs(1))
    nnx.update(other, nnx.state(model))
    np.testing.assert_array_equal(np.asarray(other(x)), np.asarray(model(x)))

    step = nnx.jit(lambda m, x: m(x, train=True))
    mean, count = np.asarray(model.bn.mean[...]), int(model.drop.rngs.count[...])
    first, second = step(model, x), step(model, x)
    assert first.shape == (2, 1, 1, 3)
    assert (np.asarray(first) != np.asarray(second)).any()  # fresh dropout masks under nnx.jit
    assert int(model.drop.rngs.count[...]) == count + 2
    assert not np.allclose(np.asarray(model.bn.mean[...]), mean)  # running stats updated
    eval_step = nnx.jit(lambda m, x: m(x, train=False))
    np.testing.assert_allclose(np.asarray(eval_step(model, x)), np.asarray(model(x)), rtol=1e-5)


def test_bfloat16_compute_with_float32_params() -> None:
    bf16 = {"dtype": jnp.bfloat16, "param_dtype": jnp.float32, "rngs": nnx.Rngs(0)}
    conv = fl.Conv((6, 6, 3), 4, 3, padding="same", activation="relu", **bf16)
    bn = fl.BatchNorm(conv.out_shape, **bf16)
    pool = fl.AvgPool(bn.out_shape, 3, 2, padding=1, rounding="ceil", **bf16)
    gap = fl.GlobalAvgPool(pool.out_shape, **bf16)
    dense = fl.Dense(gap.out_shape, 2, activation="softmax", **bf16)
    x = jnp.asarray(randn(2, 6, 6, 3, seed=23))  # float32 input, bfloat16 compute
    y = conv(x)
    assert y.dtype == jnp.bfloat16
    for layer in (bn, pool, gap, dense):
        y = layer(y, train=True)
        assert y.dtype == jnp.bfloat16 and layer.out_shape == y.shape[1:]
    params = nnx.to_flat_state(nnx.state((conv, bn, dense), nnx.Param))
    assert params and all(v[...].dtype == jnp.float32 for _, v in params)
    assert np.isfinite(np.asarray(y, np.float32)).all()


# ----------------------------------------------------------------------------- property test

pad_strategy = st.one_of(
    st.sampled_from(["valid", "same"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["conv", "max", "avg"]),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.integers(1, 2),
    padding=pad_strategy,
    ceil=st.booleans(),
    include=st.booleans(),
)
def test_window_layers_out_shape(kind, size, kernel, stride, dilation, padding, ceil, include):
    in_shape = (size[0], size[1], 2)
    dil = (dilation, dilation) if kind == "conv" else (1, 1)
    pads = resolve_padding(padding, in_shape, kernel, stride, dil)
    for axis in (0, 1):
        span = dil[axis] * (kernel[axis] - 1) + 1
        assume(span <= size[axis] + sum(pads[axis]))
    x = randn(1, *in_shape, seed=24)
    if kind == "conv":
        layer = build(lambda: fl.Conv(in_shape, 3, kernel, stride, padding, dilation, **kw()))
        ceil = False
    else:
        cls = fl.MaxPool if kind == "max" else fl.AvgPool
        rounding = "ceil" if ceil else "floor"
        layer = cls(in_shape, kernel, stride, padding, rounding, include)
    y = layer(jnp.asarray(x))
    expected = tuple(
        window_output(size[a], kernel[a], stride[a], pads[a], dil[a], ceil) for a in (0, 1)
    )
    assert layer.out_shape == y.shape[1:] == (*expected, layer.out_shape[2])
    if kind != "conv" and all(p <= k // 2 for ax, k in zip(pads, kernel, strict=True) for p in ax):
        # PyTorch's rule (pad <= kernel/2) keeps a real cell in every window
        reference = naive_pool(x, kernel, stride, pads, ceil, kind, include)
        np.testing.assert_allclose(np.asarray(y), reference, rtol=1e-5, atol=1e-6)
