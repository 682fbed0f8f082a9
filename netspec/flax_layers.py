"""Flax NNX layers that netspec's generated (and ejected) model code instantiates.

Each spec layer type has one module here, registered under its type name with
`@flax_module("conv")` (FLAX_MODULES). Every module follows one constructor contract, which
tests/test_layer_registry.py checks: `Module(in_shape, <one keyword per field of the type's
params model, with the same defaults>, *, dtype, param_dtype, rngs)`, where `in_shape` is
`(height, width, channels)` (a list of them for merging layers). It stores the output shape as
`out_shape` (plain ints, from the shape rule in netspec.shapes that the analysis uses too) and
is called as `layer(x, train)` on NHWC batches `(B, H, W, C)`; flat vectors are `(B, 1, 1, N)`.
Static configuration is kept as plain Python ints, floats, strings and tuples (NNX static
attributes); parameters and batch statistics are NNX Variables.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .shapes import (
    add_shape,
    channel_shuffle_shape,
    concat_shape,
    conv_shape,
    conv_transpose_crops,
    conv_transpose_shape,
    dense_shape,
    explicit_padding,
    flatten_shape,
    global_pool_shape,
    groupnorm_shape,
    lrn_shape,
    multiply_shape,
    pair,
    pool_shape,
    resolve_padding,
    slice_bounds,
    slice_shape,
    split_bounds,
    split_shape,
    upsample_shape,
    zeropad_shape,
)

FLAX_MODULES: dict[str, type] = {}
"""Spec layer type -> the module class that runs it (filled by `@flax_module`)."""


def flax_module(name: str):
    """Class decorator: register the class as the Flax module of spec layer type `name`."""

    def register(cls: type) -> type:
        if name in FLAX_MODULES:
            raise RuntimeError(
                f"two Flax modules for layer type {name!r}: "
                f"{FLAX_MODULES[name].__name__} and {cls.__name__}"
            )
        FLAX_MODULES[name] = cls
        return cls

    return register


ACTIVATIONS = {
    "none": lambda x: x,
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.01),
    "softplus": jax.nn.softplus,
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "hardswish": jax.nn.hard_swish,  # x * relu6(x + 3) / 6, as PyTorch
    "hardsigmoid": jax.nn.hard_sigmoid,  # relu6(x + 3) / 6, as PyTorch
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
}
"""Element-wise activations by spec name; softmax is over channels (the last axis)."""


def activate(x: jax.Array, fn: str) -> jax.Array:
    """Apply the activation named `fn` (a key of ACTIVATIONS); same shape and dtype."""
    return ACTIVATIONS[fn](x)


def _check_activation(fn: str) -> str:
    if fn not in ACTIVATIONS:
        raise ValueError(f"unknown activation {fn!r}; expected one of {', '.join(ACTIVATIONS)}")
    return fn


def _shape3(shape) -> tuple[int, int, int]:
    """Normalise an input shape to a tuple of three Python ints."""
    if len(shape) != 3:
        raise ValueError(f"expected a (height, width, channels) shape, got {shape!r}")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _low_precision(dtype) -> bool:
    """Whether to accumulate sums of `dtype` values in float32 (bfloat16, float16)."""
    return jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32


@flax_module("conv")
class Conv(nnx.Conv):
    """2-D convolution `(B, H, W, C) -> (B, H', W', filters)`, then `activation`.

    `padding` is "same" (TensorFlow/Flax SAME, extra pixel at the end), "valid", or explicit
    pixels `p`, `(ph, pw)` or `((top, bottom), (left, right))`. Parameters: `kernel`
    `(kh, kw, C // groups, filters)` and `bias` `(filters,)`.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        filters: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding="valid",
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        activation: str = "none",
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        in_shape = _shape3(in_shape)
        out_shape = conv_shape(in_shape, filters, kernel, stride, padding, dilation, groups)
        if filters % groups:
            raise ValueError(f"Conv: filters ({filters}) must be divisible by groups ({groups})")
        if rngs is None:
            raise ValueError("Conv needs rngs to initialise its parameters")
        kernel_hw, stride_hw, dilation_hw = pair(kernel), pair(stride), pair(dilation)
        pads = resolve_padding(padding, in_shape, kernel_hw, stride_hw, dilation_hw)
        super().__init__(
            in_shape[2],
            int(filters),
            kernel_hw,
            stride_hw,
            padding=pads,
            kernel_dilation=dilation_hw,
            feature_group_count=int(groups),
            use_bias=bool(bias),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        self.in_shape = in_shape
        self.activation = _check_activation(activation)
        self.out_shape = out_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`."""
        return activate(super().__call__(x), self.activation)


@flax_module("dense")
class Dense(nnx.Linear):
    """Fully connected layer on flat vectors: `(B, 1, 1, N) -> (B, 1, 1, units)`, then
    `activation`. Parameters: `kernel` `(N, units)` and `bias` `(units,)`."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        units: int,
        bias: bool = True,
        activation: str = "none",
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        in_shape = _shape3(in_shape)
        out_shape = dense_shape(in_shape, units)
        if rngs is None:
            raise ValueError("Dense needs rngs to initialise its parameters")
        super().__init__(
            in_shape[2],
            int(units),
            use_bias=bool(bias),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        self.in_shape = in_shape
        self.activation = _check_activation(activation)
        self.out_shape = out_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, 1, 1, N)` -> `(B, 1, 1, units)`."""
        # A (B, N) matmul: with the unit axes kept, XLA's CPU backward adds copies and transposes.
        y = super().__call__(x.reshape(x.shape[0], x.shape[-1]))
        return activate(y, self.activation).reshape(x.shape[0], 1, 1, -1)


@flax_module("batchnorm")
class BatchNorm(nnx.BatchNorm):
    """Per-channel batch normalisation, `(B, H, W, C)` -> same shape.

    `train=True` normalises with the batch mean and (biased) variance and updates the running
    statistics as `momentum * old + (1 - momentum) * batch`; `train=False` uses the running
    statistics. Parameters `scale` (gamma) and `bias` (beta); batch stats `mean` and `var`.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        eps: float = 1e-5,
        momentum: float = 0.9,
        scale: bool = True,
        center: bool = True,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        in_shape = _shape3(in_shape)
        super().__init__(
            in_shape[2],
            momentum=float(momentum),
            epsilon=float(eps),
            use_scale=bool(scale),
            use_bias=bool(center),
            use_fast_variance=True,  # as nnx.BatchNorm by default: one pass over x
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs if rngs is not None else nnx.Rngs(0),  # initialisers are constant
        )
        self.in_shape = in_shape
        self.out_shape = in_shape
        self.frozen = False
        """Fine-tuning: always normalise with the running statistics and never update them."""

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return super().__call__(x, use_running_average=not train or self.frozen)


@flax_module("dropout")
class Dropout(nnx.Dropout):
    """Zero a fraction `rate` of activations when `train`, scaling survivors by 1/(1-rate).

    The mask comes from the module's own RNG stream (the `dropout` stream of the Rngs given at
    construction, or its `default` stream), forked at construction and advanced on each call.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        rate: float,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        if rate > 0 and rngs is None:
            raise ValueError("Dropout with rate > 0 needs rngs for its masks")
        super().__init__(float(rate), rngs=rngs)
        self.in_shape = _shape3(in_shape)
        self.out_shape = self.in_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return super().__call__(x, deterministic=not train)


@flax_module("lrn")
class LRN(nnx.Module):
    """Caffe's across-channel local response normalisation, `(B, H, W, C)` -> same shape:
    `x / (k + alpha / size * sum of x^2 over `size` channels centred on c) ** beta`,
    with zeros beyond the first and last channel. Computed in float32."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 1.0,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"LRN size must be positive, got {size}")
        self.in_shape = _shape3(in_shape)
        self.out_shape = lrn_shape(self.in_shape, size)
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape and dtype."""
        xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        half = self.size // 2
        sums = jax.lax.reduce_window(
            xf * xf,
            0.0,
            jax.lax.add,
            (1, 1, 1, self.size),
            (1, 1, 1, 1),
            ((0, 0), (0, 0), (0, 0), (half, half)),
        )
        y = xf / (self.k + (self.alpha / self.size) * sums) ** self.beta
        return y.astype(x.dtype)


class _Pool(nnx.Module):
    """Shared configuration of MaxPool and AvgPool: window, explicit pads and output size."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding="valid",
        rounding: str = "floor",
        count_include_pad: bool = True,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if rounding not in ("floor", "ceil"):
            raise ValueError(f"rounding must be 'floor' or 'ceil', got {rounding!r}")
        in_shape = _shape3(in_shape)
        out_shape = pool_shape(in_shape, kernel, stride, padding, rounding)
        kernel_hw = pair(kernel)
        stride_hw = pair(stride if stride is not None else kernel)
        pads = resolve_padding(padding, in_shape, kernel_hw, stride_hw)
        self.in_shape = in_shape
        self.kernel = kernel_hw
        self.stride = stride_hw
        self.pads = pads
        self.rounding = rounding
        self.count_include_pad = bool(count_include_pad)
        self.out_shape = out_shape

    def _lax_padding(self) -> tuple[tuple[int, int], ...]:
        """reduce_window padding: the explicit pads, widened on the far side for a ceil window."""
        out = []
        for axis in (0, 1):
            needed = (self.out_shape[axis] - 1) * self.stride[axis] + self.kernel[axis]
            low, high = self.pads[axis]
            out.append((low, max(high, needed - self.in_shape[axis] - low)))
        return ((0, 0), out[0], out[1], (0, 0))

    def _reduce(self, x: jax.Array, init: float, op) -> jax.Array:
        """Slide the window with `op`; the result is cut to exactly `out_shape`."""
        y = jax.lax.reduce_window(
            x, init, op, (1, *self.kernel, 1), (1, *self.stride, 1), self._lax_padding()
        )
        return y[:, : self.out_shape[0], : self.out_shape[1], :]


@flax_module("maxpool")
class MaxPool(_Pool):
    """Max pooling `(B, H, W, C) -> (B, H', W', C)`; padding never wins (it is -inf).

    `stride` defaults to `kernel`; `rounding` "floor" or "ceil" (Caffe: a last partial window
    is kept unless it would start in the right padding). `count_include_pad` is ignored.
    """

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`, same dtype."""
        return _max_pool(x, self.kernel, self.stride, self._lax_padding(), self.out_shape[:2])


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _max_pool(
    x: jax.Array,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[tuple[int, int], ...],
    out_hw: tuple[int, int],
) -> jax.Array:
    """Max over (kernel) windows every (stride) of `x` (B, H, W, C) padded by `pads` with
    -inf, cut to `out_hw`. Its gradient is `_max_pool_backward`, not XLA's select-and-scatter:
    on XLA:CPU that was 2-2.5x PyTorch's max pooling backward and about as costly as all of
    Inception10's convolutions (benchmarks/conv_ops.py); the same gradient as nine (k x k)
    masked strided adds runs 3.9x faster there."""
    y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *kernel, 1), (1, *stride, 1), pads)
    return y[:, : out_hw[0], : out_hw[1], :]


def _max_pool_forward(
    x: jax.Array, kernel: tuple, stride: tuple, pads: tuple, out_hw: tuple
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    y = _max_pool(x, kernel, stride, pads, out_hw)
    return y, (x, y)


def _max_pool_backward(
    kernel: tuple, stride: tuple, pads: tuple, out_hw: tuple, saved: tuple, grad: jax.Array
) -> tuple[jax.Array]:
    """Each output's gradient goes to the first input of its window (row by row) equal to the
    output, as XLA's select-and-scatter gives it (its `ge` select keeps the first maximum)."""
    x, y = saved
    padded = jnp.pad(x, pads, constant_values=-jnp.inf)
    batch, _, _, channels = x.shape
    rows, cols = out_hw
    span = ((rows - 1) * stride[0] + 1, (cols - 1) * stride[1] + 1)
    grads = jnp.zeros_like(padded)
    taken = jnp.zeros(y.shape, dtype=bool)
    for dy in range(kernel[0]):
        for dx in range(kernel[1]):
            window = jax.lax.slice(
                padded,
                (0, dy, dx, 0),
                (batch, dy + span[0], dx + span[1], channels),
                (1, stride[0], stride[1], 1),
            )
            hit = (window == y) & ~taken
            taken = taken | hit
            grads = grads.at[
                :, dy : dy + span[0] : stride[0], dx : dx + span[1] : stride[1], :
            ].add(jnp.where(hit, grad, 0).astype(grads.dtype))
    (top, _), (left, _) = pads[1], pads[2]
    return (grads[:, top : top + x.shape[1], left : left + x.shape[2], :],)


_max_pool.defvjp(_max_pool_forward, _max_pool_backward)


def _window_counts(
    size: int, kernel: int, stride: int, pads: tuple[int, int], out: int, include_pad: bool
) -> np.ndarray:
    """How many cells each window along one axis averages over (PyTorch/Caffe divisor)."""
    counts = []
    for i in range(out):
        start = i * stride - pads[0]
        stop = start + kernel
        if include_pad:
            counts.append(min(stop, size + pads[1]) - start)
        else:
            counts.append(min(stop, size) - max(start, 0))
    return np.maximum(np.asarray(counts, np.float32), 1.0)


@flax_module("avgpool")
class AvgPool(_Pool):
    """Average pooling `(B, H, W, C) -> (B, H', W', C)`, as PyTorch and Caffe divide.

    With `count_include_pad` the divisor is the window clipped to the padded input (explicit or
    "same" pad cells count, cells a ceil-rounded window hangs past the padding do not); without,
    only real input cells count. Sums accumulate in float32 for half-precision inputs.
    """

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`, same dtype."""
        acc = jnp.promote_types(x.dtype, jnp.float32) if _low_precision(x.dtype) else x.dtype
        sums = self._reduce(x.astype(acc), 0.0, jax.lax.add)
        rows, cols = (
            _window_counts(
                self.in_shape[a],
                self.kernel[a],
                self.stride[a],
                self.pads[a],
                self.out_shape[a],
                self.count_include_pad,
            )
            for a in (0, 1)
        )
        if rows.min() == rows.max() and cols.min() == cols.max():
            y = sums / float(rows[0] * cols[0])
        else:
            divisor = np.outer(rows, cols).reshape(1, rows.size, cols.size, 1)
            y = sums / jnp.asarray(divisor, acc)
        return y.astype(x.dtype)


@flax_module("global_avgpool")
class GlobalAvgPool(nnx.Module):
    """Mean over height and width: `(B, H, W, C) -> (B, 1, 1, C)`."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = global_pool_shape(self.in_shape)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, 1, 1, C)`, same dtype."""
        acc = jnp.promote_types(x.dtype, jnp.float32) if _low_precision(x.dtype) else x.dtype
        return jnp.mean(x.astype(acc), axis=(1, 2), keepdims=True).astype(x.dtype)


@flax_module("flatten")
class Flatten(nnx.Module):
    """`(B, H, W, C) -> (B, 1, 1, H*W*C)`, row-major (height, width, channel) order."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = flatten_shape(self.in_shape)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, 1, 1, H*W*C)`."""
        return x.reshape(x.shape[0], 1, 1, self.out_shape[2])


@flax_module("zeropad")
class ZeroPad(nnx.Module):
    """Zeros around height and width: `padding` is `p`, `(ph, pw)` or
    `((top, bottom), (left, right))`; `(B, H, W, C) -> (B, H+top+bottom, W+left+right, C)`."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        padding,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.padding = explicit_padding(padding)
        self.out_shape = zeropad_shape(self.in_shape, padding)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`."""
        return jnp.pad(x, ((0, 0), self.padding[0], self.padding[1], (0, 0)))


@flax_module("activation")
class Activation(nnx.Module):
    """An element-wise activation `fn` (see ACTIVATIONS); shape and dtype unchanged. It also
    runs the shortcut types (`relu`, ...), whose `fn` is preset."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        fn: str,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = self.in_shape
        self.fn = _check_activation(fn)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return activate(x, self.fn)


@flax_module("concat")
class Concat(nnx.Module):
    """Join inputs `[(B, H, W, C1), (B, H, W, C2), ...]` on channels -> `(B, H, W, C1+C2+...)`;
    `in_shape` is the list of input shapes."""

    def __init__(
        self,
        in_shape: list[tuple[int, int, int]],
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shapes = tuple(_shape3(s) for s in in_shape)
        self.out_shape = concat_shape(*self.in_shapes)

    def __call__(self, xs: list[jax.Array], train: bool = False) -> jax.Array:
        """List of `(B, H, W, Ci)` -> `(B, H, W, sum Ci)`."""
        return jnp.concatenate(list(xs), axis=-1)


@flax_module("add")
class Add(nnx.Module):
    """Element-wise sum of inputs of one shape `(B, H, W, C)`, where a `(B, 1, 1, C)` or
    `(B, H, W, 1)` input is broadcast over it; `in_shape` is the list of input shapes."""

    def __init__(
        self,
        in_shape: list[tuple[int, int, int]],
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shapes = tuple(_shape3(s) for s in in_shape)
        self.out_shape = add_shape(*self.in_shapes)

    def __call__(self, xs: list[jax.Array], train: bool = False) -> jax.Array:
        """List of `(B, H, W, C)` -> `(B, H, W, C)`."""
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


# --- spatial layers (upsample, conv_transpose, slice, channel_shuffle)


def _nearest_indices(size: int, out: int) -> np.ndarray:
    """Source pixel of each of `out` output pixels, PyTorch's `mode="nearest"` along one axis:
    `min(floor(i * float32(size / out)), size - 1)` in float32, exact for out = size, 2 * size."""
    if out == size:
        return np.arange(out, dtype=np.int32)
    if out == 2 * size:
        return np.arange(out, dtype=np.int32) // 2
    scale = np.float32(size) / np.float32(out)
    index = np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int32)
    return np.minimum(index, size - 1)


def _bilinear_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(low, high, weight)` along one axis for half-pixel bilinear resizing (PyTorch's
    `align_corners=False`): output `i` reads source `s = max((i + 0.5) * size / out - 0.5, 0)`
    as `(1 - weight) * x[low] + weight * x[high]`, low = floor(s), high = min(low + 1, size - 1)."""
    source = np.maximum((np.arange(out) + 0.5) * (size / out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int32), size - 1)
    high = np.minimum(low + 1, size - 1)
    return low, high, (source - low).astype(np.float32)


@flax_module("upsample")
class Upsample(nnx.Module):
    """Upsampling `(B, H, W, C) -> (B, H * fh, W * fw, C)` by `factor`, or to `(B, *size, C)`.

    `nearest` with a factor repeats each pixel; to a size it picks source pixels as PyTorch's
    `F.interpolate(mode="nearest")` does (`_nearest_indices`). `bilinear` is PyTorch's
    `align_corners=False` (half-pixel centres, edges clamped, no antialiasing), computed in
    float32 for half-precision inputs. No parameters.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        factor: int | tuple[int, int] | None = None,
        size: int | tuple[int, int] | None = None,
        mode: str = "nearest",
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.in_shape = _shape3(in_shape)
        self.out_shape = upsample_shape(self.in_shape, factor, size)
        self.mode = mode
        self.repeats = pair(factor if factor is not None else 2) if size is None else None

    def _resize_axis(self, x: jax.Array, axis: int) -> jax.Array:
        """Resize axis 1 (height) or 2 (width) of `x` to its output size."""
        size, out = self.in_shape[axis - 1], self.out_shape[axis - 1]
        if self.mode == "nearest":
            if self.repeats is not None:
                return jnp.repeat(x, self.repeats[axis - 1], axis=axis)
            return jnp.take(x, _nearest_indices(size, out), axis=axis)
        low, high, weight = _bilinear_taps(size, out)
        shape = [1, 1, 1, 1]
        shape[axis] = out
        weight = jnp.asarray(weight.reshape(shape), x.dtype)
        return jnp.take(x, low, axis=axis) * (1 - weight) + jnp.take(x, high, axis=axis) * weight

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`, same dtype."""
        acc = jnp.promote_types(x.dtype, jnp.float32) if _low_precision(x.dtype) else x.dtype
        y = self._resize_axis(self._resize_axis(x.astype(acc), 1), 2)
        return y.astype(x.dtype)


@flax_module("conv_transpose")
class ConvTranspose(nnx.Module):
    """Transposed convolution `(B, H, W, C) -> (B, H', W', filters)`, then `activation`; the
    sizes and padding as PyTorch's ConvTranspose2d (or `same`: H' = H * stride, as Keras).

    Parameters: `kernel` `(kh, kw, C, filters // groups)` and `bias` `(filters,)`. Input
    channel `c` (of group `c // (C // groups)`) adds `x[c] * kernel[a, b, c, j]` to output
    pixel `(i * stride - pad + a, ...)` of channel `group * (filters // groups) + j`, as
    PyTorch does. A PyTorch weight `(C, filters // groups, kh, kw)` is thus
    `kernel = weight.permute(2, 3, 0, 1)`: no flip, no regrouping. Computed as a stride-1
    convolution of the stride-dilated input with the spatially flipped kernel.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        filters: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding=0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        activation: str = "none",
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        in_shape = _shape3(in_shape)
        out_shape = conv_transpose_shape(
            in_shape, filters, kernel, stride, padding, output_padding, groups
        )
        if rngs is None:
            raise ValueError("ConvTranspose needs rngs to initialise its parameters")
        kernel_hw, stride_hw = pair(kernel), pair(stride)
        crops = conv_transpose_crops(in_shape, kernel_hw, stride_hw, padding, output_padding)
        self.in_shape = in_shape
        self.out_shape = out_shape
        self.stride = stride_hw
        self.groups = int(groups)
        # pads of the stride-dilated input: kernel - 1 for the full output, less the crops
        self.pads = tuple(
            (k - 1 - low, k - 1 - high) for k, (low, high) in zip(kernel_hw, crops, strict=True)
        )
        self.activation = _check_activation(activation)
        self.dtype = dtype
        # LeCun normal over the kh * kw * C / groups inputs a conv of this kernel would have
        init = nnx.initializers.variance_scaling(
            float(groups), "fan_in", "truncated_normal", in_axis=(0, 1, 2), out_axis=3
        )
        shape = (*kernel_hw, in_shape[2], int(filters) // self.groups)
        self.kernel = nnx.Param(init(rngs.params(), shape, param_dtype))
        self.bias = nnx.Param(jnp.zeros((int(filters),), param_dtype)) if bias else nnx.data(None)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, *out_shape)`."""
        dtype = self.dtype or jnp.result_type(x.dtype, self.kernel.dtype)
        x, kernel = x.astype(dtype), self.kernel[...].astype(dtype)
        kh, kw, channels, per_group = kernel.shape
        groups = self.groups
        # (kh, kw, C, F/g) -> flipped HWIO (kh, kw, C/g, F) for feature_group_count=g
        rhs = kernel[::-1, ::-1].reshape(kh, kw, groups, channels // groups, per_group)
        rhs = rhs.transpose(0, 1, 3, 2, 4).reshape(kh, kw, channels // groups, groups * per_group)
        y = jax.lax.conv_general_dilated(
            x,
            rhs,
            window_strides=(1, 1),
            padding=self.pads,
            lhs_dilation=self.stride,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=groups,
        )
        if self.bias is not None:
            y = y + self.bias[...].astype(dtype).reshape(1, 1, 1, -1)
        return activate(y, self.activation)


@flax_module("slice")
class Slice(nnx.Module):
    """The channels `[start, stop)`: `(B, H, W, C) -> (B, H, W, stop - start)`; negative values
    count from the end, an unset `stop` is C."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        start: int = 0,
        stop: int | None = None,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = slice_shape(self.in_shape, start, stop)
        self.bounds = slice_bounds(self.in_shape, start, stop)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, H, W, stop - start)`."""
        return x[..., self.bounds[0] : self.bounds[1]]


@flax_module("split")
class Split(nnx.Module):
    """Piece `index` of the channels cut into `parts` equal pieces:
    `(B, H, W, C) -> (B, H, W, C / parts)`."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        parts: int,
        index: int,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = split_shape(self.in_shape, parts, index)
        self.bounds = split_bounds(self.in_shape, parts, index)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, H, W, C / parts)`."""
        return x[..., self.bounds[0] : self.bounds[1]]


@flax_module("channel_shuffle")
class ChannelShuffle(nnx.Module):
    """ShuffleNet's channel shuffle, `(B, H, W, C)` -> same shape: channels viewed as
    `(groups, C // groups)`, transposed and flattened, so channel `g * (C // groups) + j` moves
    to `j * groups + g` (torchvision's `channel_shuffle` order)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        groups: int,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = channel_shuffle_shape(self.in_shape, groups)
        self.groups = int(groups)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> `(B, H, W, C)`, channels shuffled."""
        *lead, channels = x.shape
        y = x.reshape(*lead, self.groups, channels // self.groups)
        return jnp.swapaxes(y, -1, -2).reshape(*lead, channels)


class Group(nnx.Module):
    """An empty container for named submodules (an inception block's branches); attributes may
    be assigned after construction, e.g. `g = Group(); g.reduce = Conv(...)`."""


# --- norms, gates and regularisers


@flax_module("layernorm")
class LayerNorm(nnx.LayerNorm):
    """Normalise each pixel over its channels, `(B, H, W, C)` -> same shape (channels-last,
    as ConvNeXt's LayerNorm2d; on `(B, 1, 1, N)` it is ordinary LayerNorm): `(x - mean) /
    sqrt(var + eps) * scale + bias` with the biased variance over C. `eps` defaults to 1e-6
    (ConvNeXt, Flax; PyTorch's nn.LayerNorm uses 1e-5). Parameters `scale` and `bias` `(C,)`;
    statistics in float32 for half-precision inputs."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        eps: float = 1e-6,
        scale: bool = True,
        center: bool = True,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        in_shape = _shape3(in_shape)
        super().__init__(
            in_shape[2],
            epsilon=float(eps),
            use_scale=bool(scale),
            use_bias=bool(center),
            use_fast_variance=False,  # two passes: E[(x - mean)^2], as PyTorch
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs if rngs is not None else nnx.Rngs(0),  # initialisers are constant
        )
        self.in_shape = in_shape
        self.out_shape = in_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return super().__call__(x)


@flax_module("groupnorm")
class GroupNorm(nnx.GroupNorm):
    """Group normalisation, `(B, H, W, C)` -> same shape: the channels split into `groups`
    consecutive groups, each normalised per example over its `(H, W, C / groups)` values with
    the biased variance, then `* scale + bias` per channel (PyTorch's nn.GroupNorm). Parameters
    `scale` and `bias` `(C,)`; no running statistics."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        groups: int = 32,
        eps: float = 1e-5,
        scale: bool = True,
        center: bool = True,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if groups < 1:
            raise ValueError(f"GroupNorm groups must be positive, got {groups}")
        in_shape = _shape3(in_shape)
        out_shape = groupnorm_shape(in_shape, groups)
        super().__init__(
            in_shape[2],
            num_groups=int(groups),
            epsilon=float(eps),
            use_scale=bool(scale),
            use_bias=bool(center),
            use_fast_variance=False,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs if rngs is not None else nnx.Rngs(0),  # initialisers are constant
        )
        self.in_shape = in_shape
        self.out_shape = out_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return super().__call__(x)


@flax_module("drop_path")
class DropPath(nnx.Dropout):
    """Stochastic depth: when `train`, zero each example's whole `(H, W, C)` input with
    probability `rate` and scale the kept ones by 1/(1-rate); identity otherwise.

    One Bernoulli draw per example (a dropout mask broadcast over height, width and channels),
    from the same RNG stream as Dropout (the `dropout` stream of the Rngs given at
    construction, or its `default` stream), forked at construction and advanced on each call.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        rate: float,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate}")
        if rate > 0 and rngs is None:
            raise ValueError("DropPath with rate > 0 needs rngs for its masks")
        super().__init__(float(rate), broadcast_dims=(1, 2, 3), rngs=rngs)
        self.in_shape = _shape3(in_shape)
        self.out_shape = self.in_shape

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape."""
        return super().__call__(x, deterministic=not train)


@flax_module("layer_scale")
class LayerScale(nnx.Module):
    """`x * gamma` with a learnable per-channel factor: `(B, H, W, C)` -> same shape.
    Parameter `gamma` `(C,)`, every entry `init` at first (ConvNeXt: 1e-6)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        init: float = 1e-6,
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shape = _shape3(in_shape)
        self.out_shape = self.in_shape
        self.dtype = dtype
        self.gamma = nnx.Param(jnp.full((self.in_shape[2],), float(init), param_dtype))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`(B, H, W, C)` -> same shape; in `dtype`, or else the promoted type of x and gamma."""
        gamma = self.gamma[...]
        dtype = self.dtype or jnp.promote_types(x.dtype, gamma.dtype)
        return x.astype(dtype) * gamma.astype(dtype).reshape(1, 1, 1, -1)


@flax_module("multiply")
class Multiply(nnx.Module):
    """Element-wise product of inputs of one shape `(B, H, W, C)`, where a `(B, 1, 1, C)`
    (e.g. a squeeze-excitation gate) or `(B, H, W, 1)` input is broadcast over it; `in_shape`
    is the list of input shapes."""

    def __init__(
        self,
        in_shape: list[tuple[int, int, int]],
        *,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        self.in_shapes = tuple(_shape3(s) for s in in_shape)
        self.out_shape = multiply_shape(*self.in_shapes)

    def __call__(self, xs: list[jax.Array], train: bool = False) -> jax.Array:
        """List of `(B, H, W, C)`, `(B, 1, 1, C)` or `(B, H, W, 1)` -> `(B, H, W, C)`."""
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y
