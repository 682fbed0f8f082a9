"""Copy a PyTorch model's weights into a compiled netspec model, layer by layer.

The two models are paired by execution order and shape: netspec's layers that hold variables
(conv, dense, batch norm, layer norm, group norm, layer scale) in the order the analysis lists
them (the table's rows top to bottom, branches in order), and the torch modules that hold
parameters in their registration order (`named_modules()`). Each pair must agree on its role
(conv with `Conv2d`, ...), its shapes and its hyperparameters (stride, padding, groups, eps,
...); the first disagreement raises `MappingError` naming both sides. Where an architecture
registers its modules in another order than it runs them (ConvNeXt's block holds its layer
scale itself, before its layers), pass the torch module names explicitly (`order=`).

Layouts: conv OIHW -> HWIO (grouped and depthwise kernels too: netspec's conv is `nnx.Conv`
with `feature_group_count`, kernel `(kh, kw, C // groups, filters)` with the output channels
grouped consecutively as in PyTorch); a `Linear` on channels-last maps (ConvNeXt) -> a 1x1 conv
`(1, 1, in, out)`; dense `(out, in)` -> `(in, out)` with the rows permuted from PyTorch's C, H, W
flattening to netspec's H, W, C where a flatten precedes the dense layer; batch norm weight /
bias / running_mean / running_var -> scale / bias / mean / var; layer and group norm weight /
bias -> scale / bias; a layer scale `(C, 1, 1)` -> gamma `(C,)`.

torch is imported by the functions that need it, so importing this module does not need torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

import netspec
from netspec.emit import state_path
from netspec.shapes import pair, resolve_padding

# netspec ops that pass their input through unchanged in shape, between a flatten and a dense.
SHAPE_PRESERVING = {"dropout", "activation"}


class MappingError(ValueError):
    """The netspec and torch layers do not pair up: the message names both sides."""


@dataclass(frozen=True)
class NetspecLayer:
    """A netspec layer with variables: its node, input shape and the Flax module holding them."""

    name: str
    op: str
    attrs: dict[str, Any]
    in_shape: tuple[int, int, int]
    module: Any
    flattened: tuple[int, int, int] | None = None  # a dense layer's input before a flatten

    def describe(self) -> str:
        return f"netspec layer {self.name!r} ({self.op}, input {'x'.join(map(str, self.in_shape))})"


@dataclass(frozen=True)
class TorchLayer:
    """A torch module that holds parameters directly."""

    name: str
    module: Any

    def describe(self) -> str:
        shapes = ", ".join(
            f"{n} {tuple(p.shape)}" for n, p in self.module.named_parameters(recurse=False)
        )
        return f"torch module {self.name!r} ({type(self.module).__name__}: {shapes})"


def netspec_layers(compiled: netspec.Compiled, model: Any) -> list[NetspecLayer]:
    """Layers holding parameters or statistics, in the analysis' (execution) order; train-only
    heads are left out (torchvision's eval models have none)."""
    shapes = {"input": compiled.graph.input_shape}
    shapes |= {n.name: n.output_shape for n in compiled.report.nodes}
    layers = []
    for report in compiled.report.nodes:
        if report.train_only or not (report.params or report.state):
            continue
        node = compiled.graph.node(report.name)
        module = model
        for part in state_path(node.name):
            module = module[part] if isinstance(part, int) else getattr(module, part)
        flattened = None
        if node.op == "dense":
            source = compiled.graph.node(node.inputs[0]) if node.inputs[0] != "input" else None
            while source is not None and source.op in SHAPE_PRESERVING:
                first = source.inputs[0]
                source = compiled.graph.node(first) if first != "input" else None
            if source is not None and source.op == "flatten":
                flattened = shapes[source.inputs[0]]
        layers.append(
            NetspecLayer(
                node.name,
                node.op,
                dict(node.attrs),
                tuple(shapes[node.inputs[0]]),
                module,
                flattened,
            )
        )
    return layers


def torch_layers(torch_model: Any, order: Sequence[str] | None = None) -> list[TorchLayer]:
    """Modules that hold parameters themselves, in registration order (or as named in
    `order`: every such module exactly once)."""
    holding = {
        name: module
        for name, module in torch_model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    }
    if order is None:
        return [TorchLayer(name, module) for name, module in holding.items()]
    unknown = [n for n in order if n not in holding]
    missing = [n for n in holding if n not in order]
    if unknown or missing or len(set(order)) != len(order):
        raise MappingError(
            f"order= must name every torch module holding parameters once: unknown {unknown}, "
            f"missing {missing}"
        )
    return [TorchLayer(name, holding[name]) for name in order]


def as_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def assign(ours: NetspecLayer, theirs: TorchLayer, field: str, value: np.ndarray) -> None:
    """Set the Flax variable `field` of `ours` to `value` after checking its shape."""
    variable = getattr(ours.module, field, None)
    if variable is None:
        raise MappingError(
            f"{ours.describe()} has no {field!r} for the value of {theirs.describe()}"
        )
    old = variable.get_value()
    if tuple(old.shape) != value.shape:
        raise MappingError(
            f"{ours.describe()}: {field} has shape {tuple(old.shape)}, but {theirs.describe()} "
            f"gives {value.shape}"
        )
    variable.set_value(jnp.asarray(value, dtype=old.dtype))


def expect(ours: NetspecLayer, theirs: TorchLayer, what: str, mine: Any, other: Any) -> None:
    if mine != other:
        raise MappingError(
            f"{ours.describe()} and {theirs.describe()} differ in {what}: {mine!r} here, "
            f"{other!r} in torch"
        )


def copy_conv(ours: NetspecLayer, theirs: TorchLayer) -> None:
    conv, a = theirs.module, ours.attrs
    kernel, stride, dilation = pair(a["kernel"]), pair(a["stride"]), pair(a["dilation"])
    if type(conv).__name__ == "Linear":  # a pointwise layer on channels-last maps
        expect(
            ours,
            theirs,
            "a 1x1 conv's kernel, stride, groups",
            (kernel, stride, a["groups"]),
            ((1, 1), (1, 1), 1),
        )
        expect(ours, theirs, "input channels", ours.in_shape[2], conv.in_features)
        expect(ours, theirs, "filters", a["filters"], conv.out_features)
        expect(ours, theirs, "bias", a["bias"], conv.bias is not None)
        assign(ours, theirs, "kernel", as_numpy(conv.weight).T[None, None])
        if conv.bias is not None:
            assign(ours, theirs, "bias", as_numpy(conv.bias))
        return
    expect(ours, theirs, "input channels", ours.in_shape[2], conv.in_channels)
    expect(ours, theirs, "filters", a["filters"], conv.out_channels)
    expect(ours, theirs, "kernel", kernel, tuple(conv.kernel_size))
    expect(ours, theirs, "stride", stride, tuple(conv.stride))
    expect(ours, theirs, "dilation", dilation, tuple(conv.dilation))
    expect(ours, theirs, "groups", a["groups"], conv.groups)
    expect(ours, theirs, "bias", a["bias"], conv.bias is not None)
    expect(ours, theirs, "padding mode", "zeros", conv.padding_mode)
    if isinstance(conv.padding, str):
        raise MappingError(f"{theirs.describe()}: padding {conv.padding!r} is not compared")
    pads = resolve_padding(a["padding"], ours.in_shape, kernel, stride, dilation)
    theirs_pads = tuple((int(p), int(p)) for p in conv.padding)
    expect(ours, theirs, "padding", tuple(map(tuple, pads)), theirs_pads)
    assign(ours, theirs, "kernel", as_numpy(conv.weight).transpose(2, 3, 1, 0))
    if conv.bias is not None:
        assign(ours, theirs, "bias", as_numpy(conv.bias))


def copy_dense(ours: NetspecLayer, theirs: TorchLayer) -> None:
    linear, a = theirs.module, ours.attrs
    expect(ours, theirs, "input features", ours.in_shape[2], linear.in_features)
    expect(ours, theirs, "units", a["units"], linear.out_features)
    expect(ours, theirs, "bias", a["bias"], linear.bias is not None)
    kernel = as_numpy(linear.weight).T  # (in, out), rows in torch's flattening order
    if ours.flattened is not None:
        h, w, c = ours.flattened
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    assign(ours, theirs, "kernel", kernel)
    if linear.bias is not None:
        assign(ours, theirs, "bias", as_numpy(linear.bias))


def copy_batchnorm(ours: NetspecLayer, theirs: TorchLayer) -> None:
    bn, a = theirs.module, ours.attrs
    expect(ours, theirs, "channels", ours.in_shape[2], bn.num_features)
    expect(ours, theirs, "scale and center", (a["scale"], a["center"]), (bn.affine, bn.affine))
    check_eps(ours, theirs)
    if bn.running_mean is None:
        raise MappingError(f"{theirs.describe()} keeps no running statistics")
    assign(ours, theirs, "scale", as_numpy(bn.weight))
    assign(ours, theirs, "bias", as_numpy(bn.bias))
    assign(ours, theirs, "mean", as_numpy(bn.running_mean))
    assign(ours, theirs, "var", as_numpy(bn.running_var))


def check_eps(ours: NetspecLayer, theirs: TorchLayer) -> None:
    if not math.isclose(ours.attrs["eps"], theirs.module.eps, rel_tol=1e-9):
        expect(ours, theirs, "eps", ours.attrs["eps"], theirs.module.eps)


def copy_affine(ours: NetspecLayer, theirs: TorchLayer) -> None:
    """weight -> scale, bias -> bias (absent ones must be absent on both sides)."""
    a, module = ours.attrs, theirs.module
    mine = (a["scale"], a["center"])
    other = (module.weight is not None, module.bias is not None)
    expect(ours, theirs, "scale and center", mine, other)
    if module.weight is not None:
        assign(ours, theirs, "scale", as_numpy(module.weight))
    if module.bias is not None:
        assign(ours, theirs, "bias", as_numpy(module.bias))


def copy_layernorm(ours: NetspecLayer, theirs: TorchLayer) -> None:
    shape = tuple(theirs.module.normalized_shape)
    expect(ours, theirs, "normalised shape (the channels)", (ours.in_shape[2],), shape)
    check_eps(ours, theirs)
    copy_affine(ours, theirs)


def copy_groupnorm(ours: NetspecLayer, theirs: TorchLayer) -> None:
    expect(ours, theirs, "channels", ours.in_shape[2], theirs.module.num_channels)
    expect(ours, theirs, "groups", ours.attrs["groups"], theirs.module.num_groups)
    check_eps(ours, theirs)
    copy_affine(ours, theirs)


def copy_layer_scale(ours: NetspecLayer, theirs: TorchLayer) -> None:
    """A module whose one own parameter is a per-channel factor, `(C,)` or `(C, 1, 1)`."""
    (value,) = [p for _, p in theirs.module.named_parameters(recurse=False)]
    channels = ours.in_shape[2]
    if value.numel() != channels or any(d != 1 for d in value.shape[1:]):
        raise MappingError(
            f"{ours.describe()} wants one factor per channel ({channels}), {theirs.describe()} "
            "holds another shape"
        )
    assign(ours, theirs, "gamma", as_numpy(value).reshape(channels))


# netspec op -> (the torch module class names it pairs with, the copy function)
CONVERTERS: dict[str, tuple[tuple[str, ...], Callable[[NetspecLayer, TorchLayer], None]]] = {
    "conv": (("Conv2d", "Linear"), copy_conv),
    "dense": (("Linear",), copy_dense),
    "batchnorm": (("BatchNorm2d",), copy_batchnorm),
    "layernorm": (("LayerNorm", "LayerNorm2d"), copy_layernorm),
    "groupnorm": (("GroupNorm",), copy_groupnorm),
    "layer_scale": (("CNBlock",), copy_layer_scale),  # torchvision ConvNeXt's block
}


def copy_weights(
    torch_model: Any,
    compiled: netspec.Compiled,
    model: Any,
    order: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """Copy every parameter and batch-norm statistic of `torch_model` into `model` (built from
    `compiled`); returns the (netspec node, torch module) pairs, in order."""
    ours, theirs = netspec_layers(compiled, model), torch_layers(torch_model, order)
    pairs = []
    for index, (mine, other) in enumerate(zip(ours, theirs, strict=False)):
        if mine.op not in CONVERTERS:
            raise MappingError(f"layer {index}: no converter for {mine.describe()}")
        kinds, convert = CONVERTERS[mine.op]
        if type(other.module).__name__ not in kinds:
            raise MappingError(
                f"layer {index}: {mine.describe()} pairs with {other.describe()}, "
                f"expected a {' or '.join(kinds)}"
            )
        convert(mine, other)
        pairs.append((mine.name, other.name))
    if len(ours) != len(theirs):
        extra = ours[len(theirs)] if len(ours) > len(theirs) else theirs[len(ours)]
        raise MappingError(
            f"{len(ours)} netspec layers with variables, {len(theirs)} torch modules with "
            f"parameters; the first without a partner: {extra.describe()}"
        )
    return pairs


def randomise(torch_model: Any, seed: int, images: Any) -> None:
    """Give every parameter that torchvision initialises to one constant random values (a
    zero one, such as a bias, N(0, 0.2^2); another, such as a norm's weight or a layer scale,
    U(0.5, 1.5)), then every batch norm running statistics measured on `images` (a
    training-mode pass with cumulative averages) and perturbed at random, per channel. A copy
    that swaps or drops any of them then changes the output, eval mode is a real check, and the
    activations keep their scale through the network (purely random statistics can make the
    output depend on biases alone)."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def uniform(like: Any, low: float, high: float) -> Any:
        return low + (high - low) * torch.rand(like.shape, generator=generator)

    def normal(like: Any, std: float) -> Any:
        return std * torch.randn(like.shape, generator=generator)

    norms = [
        m for m in torch_model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    with torch.no_grad():
        for parameter in torch_model.parameters():
            first = parameter.flatten()[0]
            if bool((parameter == first).all()):
                if float(first) == 0.0:
                    parameter.copy_(normal(parameter, 0.2))
                else:
                    parameter.copy_(uniform(parameter, 0.5, 1.5))
        momenta = [module.momentum for module in norms]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None  # cumulative: the plain average of what it sees
        torch_model.train()
        torch_model(images)
        for module, momentum in zip(norms, momenta, strict=True):
            std = module.running_var.sqrt()
            module.running_mean.add_(std * normal(std, 0.2))
            module.running_var.mul_(uniform(std, 0.7, 1.4))
            module.momentum = momentum
    torch_model.eval()
