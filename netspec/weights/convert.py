"""One converter per netspec layer type: a source layer's tensors -> the Flax module's variables.

Each converter returns {variable: array in the module's layout} or raises `Mismatch` saying what
differs; it never touches the module. Layout rules (see `source.LAYOUTS`): torch conv OIHW ->
HWIO, torch transposed conv (I, O/g, kh, kw) -> (kh, kw, I, O/g), torch dense (out, in) -> (in,
out) with rows permuted from C, H, W to netspec's H, W, C where a flatten precedes it, Keras
depthwise (kh, kw, C, m) -> (kh, kw, 1, C*m); batch norm scale / bias / mean / var.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .source import SourceLayer
from .targets import TargetLayer


class Mismatch(ValueError):
    """A source layer cannot fill a netspec layer; the message says how they differ."""


Converter = Callable[[TargetLayer, SourceLayer, str], dict[str, np.ndarray]]
CONVERTERS: dict[str, tuple[tuple[str, ...], Converter]] = {}
"""netspec op -> (the source kinds it accepts, its converter)."""


def converter(op: str, kinds: tuple[str, ...]) -> Callable[[Converter], Converter]:
    def register(function: Converter) -> Converter:
        if op in CONVERTERS:
            raise ValueError(f"a weight converter for {op!r} is registered twice")
        CONVERTERS[op] = (kinds, function)
        return function

    return register


def tensor(source: SourceLayer, role: str) -> np.ndarray:
    if role not in source.tensors:
        raise Mismatch(f"it holds no {role}")
    return np.asarray(source.tensors[role], dtype=np.float32)


def checked(target: TargetLayer, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`values` after checking each against the module's variable of that name."""
    wanted = target.variables()
    for name, value in values.items():
        if name not in wanted:
            raise Mismatch(f"netspec's layer has no {name} (it has {', '.join(wanted)})")
        if tuple(value.shape) != wanted[name]:
            raise Mismatch(f"{name} is {wanted[name]} here, {tuple(value.shape)} there")
    missing = [name for name in wanted if name not in values]
    if missing:
        raise Mismatch(f"it supplies no {', '.join(missing)}")
    return values


def with_bias(target: TargetLayer, source: SourceLayer, kernel: np.ndarray) -> dict:
    values = {"kernel": kernel}
    if "bias" in source.tensors:
        values["bias"] = tensor(source, "bias")
    if "bias" in target.variables() and "bias" not in values:
        raise Mismatch("netspec's layer has a bias, the source's has none (write bias=false)")
    if "bias" in values and "bias" not in target.variables():
        raise Mismatch("the source's layer has a bias, netspec's has none (bias=false)")
    return values


def conv_kernel(target: TargetLayer, source: SourceLayer, layout: str) -> np.ndarray:
    """The source's kernel as (kh, kw, C/groups, filters)."""
    kernel = tensor(source, "kernel")
    wanted = target.variables().get("kernel", ())
    if kernel.ndim == 2:  # a pointwise dense layer on channels-last maps (ConvNeXt's MLP)
        kernel = kernel.T if layout == "torch" else kernel
        return kernel[None, None]
    if kernel.ndim != 4:
        raise Mismatch(f"its kernel has {kernel.ndim} dimensions, a conv's has 4")
    if layout == "torch":
        return kernel.transpose(2, 3, 1, 0)
    if source.tensors.get("depthwise") is not None or (
        layout == "keras" and kernel.shape[2] > 1 and len(wanted) == 4 and wanted[2] == 1
    ):
        kh, kw, channels, multiplier = kernel.shape
        return kernel.reshape(kh, kw, 1, channels * multiplier)
    return kernel


@converter("conv", ("conv", "dense"))
def convert_conv(target: TargetLayer, source: SourceLayer, layout: str) -> dict[str, np.ndarray]:
    return checked(target, with_bias(target, source, conv_kernel(target, source, layout)))


@converter("conv_transpose", ("conv",))
def convert_conv_transpose(
    target: TargetLayer, source: SourceLayer, layout: str
) -> dict[str, np.ndarray]:
    kernel = tensor(source, "kernel")
    if kernel.ndim != 4:
        raise Mismatch(f"its kernel has {kernel.ndim} dimensions, a transposed conv's has 4")
    if layout == "torch":
        kernel = kernel.transpose(2, 3, 0, 1)
    elif layout == "keras":  # Keras's Conv2DTranspose kernel is (kh, kw, out, in)
        kernel = kernel.transpose(0, 1, 3, 2)
    return checked(target, with_bias(target, source, kernel))


@converter("dense", ("dense",))
def convert_dense(target: TargetLayer, source: SourceLayer, layout: str) -> dict[str, np.ndarray]:
    kernel = tensor(source, "kernel")
    if kernel.ndim != 2:
        raise Mismatch(f"its kernel has {kernel.ndim} dimensions, a dense layer's has 2")
    if layout == "torch":
        kernel = kernel.T
        if target.flattened is not None and kernel.shape[0] == int(np.prod(target.flattened)):
            h, w, c = target.flattened
            kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return checked(target, with_bias(target, source, kernel))


@converter("batchnorm", ("batchnorm",))
def convert_batchnorm(
    target: TargetLayer, source: SourceLayer, layout: str
) -> dict[str, np.ndarray]:
    wanted = target.variables()
    values = {"mean": tensor(source, "mean"), "var": tensor(source, "var")}
    for role in ("scale", "bias"):
        if role not in wanted:
            if role in source.tensors and not _is_identity(source.tensors[role], role):
                raise Mismatch(f"the source learned a {role}, netspec's layer has none")
            continue
        if role in source.tensors:
            values[role] = tensor(source, role)
        else:  # Keras's BatchNormalization(scale=False) and center=False: identity values
            values[role] = np.full(wanted[role], 1.0 if role == "scale" else 0.0, np.float32)
    if layout == "torch" and target.flattened is not None:  # BatchNorm1d after a flatten
        h, w, c = target.flattened
        for role, vector in values.items():
            if vector.size == h * w * c:  # C, H, W order -> netspec's H, W, C
                values[role] = vector.reshape(c, h, w).transpose(1, 2, 0).ravel()
    return checked(target, values)


def _is_identity(value: np.ndarray, role: str) -> bool:
    return bool(np.all(np.asarray(value) == (1.0 if role == "scale" else 0.0)))


def convert_affine(target: TargetLayer, source: SourceLayer, layout: str) -> dict[str, np.ndarray]:
    values = {role: tensor(source, role) for role in ("scale", "bias") if role in source.tensors}
    return checked(target, values)


CONVERTERS["layernorm"] = (("norm",), convert_affine)
CONVERTERS["groupnorm"] = (("norm",), convert_affine)


@converter("layer_scale", ("scale",))
def convert_layer_scale(
    target: TargetLayer, source: SourceLayer, layout: str
) -> dict[str, np.ndarray]:
    gamma = tensor(source, "gamma")
    channels = target.in_shape[2]
    if gamma.size != channels or any(d != 1 for d in gamma.shape[1:]):
        raise Mismatch(f"it holds {tuple(gamma.shape)}, not one factor per channel ({channels})")
    return checked(target, {"gamma": gamma.reshape(channels)})


def convert(target: TargetLayer, source: SourceLayer, layout: str) -> dict[str, np.ndarray]:
    """The values `source` gives `target`'s variables (Mismatch if it cannot)."""
    if target.op not in CONVERTERS:
        raise Mismatch(f"netspec cannot load weights into a {target.op} layer yet")
    kinds, function = CONVERTERS[target.op]
    if source.kind not in kinds:
        raise Mismatch(
            f"a {target.op} layer takes a {' or '.join(kinds)} layer, not a {source.kind}"
        )
    return function(target, source, layout)
