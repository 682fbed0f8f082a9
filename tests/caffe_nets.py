"""Independent Caffe references for testing `netspec import` of Caffe prototxt files.

Nothing here uses netspec. A net is a list of layer dicts, in Caffe's order:

    {"name": "conv1", "type": "Convolution", "bottoms": ["data"], "tops": ["conv1"],
     "params": {"num_output": 96, "kernel_size": 11, "stride": 4}}

`params` holds the fields of the layer type's own message (convolution_param, pooling_param,
...); a nested dict is a nested message (weight_filler), a list a repeated field. Optional keys:
"phase" ("TRAIN"/"TEST": `include { phase: ... }`), "loss_weight", "param" (a list of
{"lr_mult", "decay_mult"} dicts), "transform" (a Data layer's transform_param), "comment" (a
`# ...` line written before the layer) and "note" (a `# ...` written after its name line).

The nets follow the BVLC model zoo definitions (bvlc_alexnet, bvlc_googlenet); the forward pass
follows Caffe's documented layer semantics and is written here from those facts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Layer = dict[str, Any]
Net = list[Layer]

# Fields whose values are enum identifiers, written without quotes.
ENUM_FIELDS = {"pool", "operation", "norm_region", "backend", "phase", "engine"}

# The message that holds each layer type's `params`.
PARAM_MESSAGE = {
    "Convolution": "convolution_param",
    "Pooling": "pooling_param",
    "LRN": "lrn_param",
    "InnerProduct": "inner_product_param",
    "Dropout": "dropout_param",
    "Concat": "concat_param",
    "Eltwise": "eltwise_param",
    "BatchNorm": "batch_norm_param",
    "Scale": "scale_param",
    "ReLU": "relu_param",
    "Softmax": "softmax_param",
    "SoftmaxWithLoss": "softmax_param",
    "Accuracy": "accuracy_param",
    "Input": "input_param",
    "Data": "data_param",
}

# V1 (`layers { type: ENUM }`) names; V1 has no Input, BatchNorm or Scale.
V1_TYPES = {
    "Convolution": "CONVOLUTION",
    "Pooling": "POOLING",
    "LRN": "LRN",
    "InnerProduct": "INNER_PRODUCT",
    "Dropout": "DROPOUT",
    "Concat": "CONCAT",
    "Eltwise": "ELTWISE",
    "ReLU": "RELU",
    "Softmax": "SOFTMAX",
    "SoftmaxWithLoss": "SOFTMAX_LOSS",
    "Accuracy": "ACCURACY",
    "Data": "DATA",
    "Split": "SPLIT",
}

GOOGLENET_INCEPTIONS = {
    # name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

_LEARNED = [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]

# ---------------------------------------------------------------------------------------------
# Layer builders


def layer(name: str, type_: str, bottoms: list[str], tops: list[str], **params: Any) -> Layer:
    """A layer dict with `params` as its type's message fields."""
    return {
        "name": name,
        "type": type_,
        "bottoms": list(bottoms),
        "tops": list(tops),
        "params": params,
    }


def _conv(
    name: str, bottom: str, num_output: int, kernel: int, *, fillers: bool = False, **extra: Any
) -> Layer:
    params: dict[str, Any] = {"num_output": num_output, **extra, "kernel_size": kernel}
    if fillers:
        params["weight_filler"] = {"type": "xavier"}
        params["bias_filler"] = {"type": "constant", "value": 0.2}
    out = layer(name, "Convolution", [bottom], [name], **params)
    out["param"] = [dict(p) for p in _LEARNED]
    return out


def _fc(name: str, bottom: str, num_output: int, *, fillers: bool = False) -> Layer:
    params: dict[str, Any] = {"num_output": num_output}
    if fillers:
        params["weight_filler"] = {"type": "xavier"}
        params["bias_filler"] = {"type": "constant", "value": 0}
    out = layer(name, "InnerProduct", [bottom], [name], **params)
    out["param"] = [dict(p) for p in _LEARNED]
    return out


def _relu(name: str, blob: str) -> Layer:
    return layer(name, "ReLU", [blob], [blob])


def _pool(name: str, bottom: str, pool: str, kernel: int, stride: int, pad: int = 0) -> Layer:
    params: dict[str, Any] = {"pool": pool, "kernel_size": kernel, "stride": stride}
    if pad:
        params["pad"] = pad
    return layer(name, "Pooling", [bottom], [name], **params)


def _lrn(name: str, bottom: str) -> Layer:
    return layer(name, "LRN", [bottom], [name], local_size=5, alpha=0.0001, beta=0.75)


def _dropout(name: str, blob: str, ratio: float) -> Layer:
    return layer(name, "Dropout", [blob], [blob], dropout_ratio=ratio)


def _input(shape: tuple[int, ...], top: str = "data") -> Layer:
    return layer(top, "Input", [], [top], shape={"dim": list(shape)})


def _data_layers(crop: int) -> list[Layer]:
    """BVLC ImageNet Data layers: TRAIN (batch 32, mirrored) and TEST (batch 50)."""
    out = []
    for phase, source, batch, mirror in (
        ("TRAIN", "examples/imagenet/ilsvrc12_train_lmdb", 32, True),
        ("TEST", "examples/imagenet/ilsvrc12_val_lmdb", 50, False),
    ):
        data = layer("data", "Data", [], ["data", "label"], source=source, batch_size=batch)
        data["params"]["backend"] = "LMDB"
        data["phase"] = phase
        data["transform"] = {"mirror": mirror, "crop_size": crop, "mean_value": [104, 117, 123]}
        out.append(data)
    return out


def _losses(prefix: str, loss_name: str, top: str, bottom: str, weight: float) -> list[Layer]:
    loss = layer(loss_name, "SoftmaxWithLoss", [bottom, "label"], [top])
    loss["loss_weight"] = weight
    top1 = layer(f"{prefix}/top-1", "Accuracy", [bottom, "label"], [f"{prefix}/top-1"])
    top5 = layer(f"{prefix}/top-5", "Accuracy", [bottom, "label"], [f"{prefix}/top-5"], top_k=5)
    top1["phase"] = top5["phase"] = "TEST"
    return [loss, top1, top5]


# ---------------------------------------------------------------------------------------------
# The nets


def bvlc_alexnet(deploy: bool = True, batch: int = 10) -> Net:
    """BVLC AlexNet (models/bvlc_alexnet): LRN before pooling, groups of 2 in conv2/4/5.

    deploy: an Input layer (batch x 3 x 227 x 227; the zoo's deploy file uses batch 10) and a
    final `prob` Softmax; otherwise ImageNet Data layers (crop 227), `loss` (SoftmaxWithLoss)
    and `accuracy` (TEST). 60,965,224 parameters either way."""
    net: Net = [_input((batch, 3, 227, 227))] if deploy else _data_layers(227)
    net += [
        _conv("conv1", "data", 96, 11, stride=4),
        _relu("relu1", "conv1"),
        _lrn("norm1", "conv1"),
        _pool("pool1", "norm1", "MAX", 3, 2),
        _conv("conv2", "pool1", 256, 5, pad=2, group=2),
        _relu("relu2", "conv2"),
        _lrn("norm2", "conv2"),
        _pool("pool2", "norm2", "MAX", 3, 2),
        _conv("conv3", "pool2", 384, 3, pad=1),
        _relu("relu3", "conv3"),
        _conv("conv4", "conv3", 384, 3, pad=1, group=2),
        _relu("relu4", "conv4"),
        _conv("conv5", "conv4", 256, 3, pad=1, group=2),
        _relu("relu5", "conv5"),
        _pool("pool5", "conv5", "MAX", 3, 2),
        _fc("fc6", "pool5", 4096),
        _relu("relu6", "fc6"),
        _dropout("drop6", "fc6", 0.5),
        _fc("fc7", "fc6", 4096),
        _relu("relu7", "fc7"),
        _dropout("drop7", "fc7", 0.5),
        _fc("fc8", "fc7", 1000),
    ]
    if deploy:
        net.append(layer("prob", "Softmax", ["fc8"], ["prob"]))
    else:
        accuracy = layer("accuracy", "Accuracy", ["fc8", "label"], ["accuracy"])
        accuracy["phase"] = "TEST"
        net += [accuracy, layer("loss", "SoftmaxWithLoss", ["fc8", "label"], ["loss"])]
    return net


def _inception(name: str, bottom: str, columns: tuple[int, ...], fillers: bool) -> Net:
    c1, c3r, c3, c5r, c5, pp = columns
    p = f"inception_{name}/"
    return [
        _conv(p + "1x1", bottom, c1, 1, fillers=fillers),
        _relu(p + "relu_1x1", p + "1x1"),
        _conv(p + "3x3_reduce", bottom, c3r, 1, fillers=fillers),
        _relu(p + "relu_3x3_reduce", p + "3x3_reduce"),
        _conv(p + "3x3", p + "3x3_reduce", c3, 3, pad=1, fillers=fillers),
        _relu(p + "relu_3x3", p + "3x3"),
        _conv(p + "5x5_reduce", bottom, c5r, 1, fillers=fillers),
        _relu(p + "relu_5x5_reduce", p + "5x5_reduce"),
        _conv(p + "5x5", p + "5x5_reduce", c5, 5, pad=2, fillers=fillers),
        _relu(p + "relu_5x5", p + "5x5"),
        _pool(p + "pool", bottom, "MAX", 3, 1, pad=1),
        _conv(p + "pool_proj", p + "pool", pp, 1, fillers=fillers),
        _relu(p + "relu_pool_proj", p + "pool_proj"),
        layer(
            p + "output",
            "Concat",
            [p + "1x1", p + "3x3", p + "5x5", p + "pool_proj"],
            [p + "output"],
        ),
    ]


def _aux_head(n: int, bottom: str) -> Net:
    p = f"loss{n}/"
    return [
        _pool(p + "ave_pool", bottom, "AVE", 5, 3),
        _conv(p + "conv", p + "ave_pool", 128, 1, fillers=True),
        _relu(p + "relu_conv", p + "conv"),
        _fc(p + "fc", p + "conv", 1024, fillers=True),
        _relu(p + "relu_fc", p + "fc"),
        _dropout(p + "drop_fc", p + "fc", 0.7),
        _fc(p + "classifier", p + "fc", 1000, fillers=True),
        # BVLC names the loss layer loss{n}/loss and its top loss{n}/loss1.
        *_losses(f"loss{n}", p + "loss", p + "loss1", p + "classifier", 0.3),
    ]


def bvlc_googlenet(deploy: bool = True, batch: int = 10, data_layer: bool = True) -> Net:
    """BVLC GoogLeNet (models/bvlc_googlenet), Szegedy et al. 2015 Table 1.

    deploy: Input batch x 3 x 224 x 224, ..., loss3/classifier, prob (6,998,552 parameters).
    Otherwise train_val: Data layers (TRAIN/TEST; with data_layer=False one Input layer with
    tops data and label instead), the auxiliary heads loss1 (after inception_4a) and loss2
    (after inception_4d), loss3/loss3 and the TEST-phase top-1/top-5 Accuracy layers
    (13,378,280 parameters)."""
    fillers = not deploy
    if deploy:
        net: Net = [_input((batch, 3, 224, 224))]
    elif data_layer:
        net = _data_layers(224)
    else:
        net = [
            layer(
                "data",
                "Input",
                [],
                ["data", "label"],
                shape=[{"dim": [batch, 3, 224, 224]}, {"dim": [batch]}],
            )
        ]
    net += [
        _conv("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3, fillers=fillers),
        _relu("conv1/relu_7x7", "conv1/7x7_s2"),
        _pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2),
        _lrn("pool1/norm1", "pool1/3x3_s2"),
        _conv("conv2/3x3_reduce", "pool1/norm1", 64, 1, fillers=fillers),
        _relu("conv2/relu_3x3_reduce", "conv2/3x3_reduce"),
        _conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1, fillers=fillers),
        _relu("conv2/relu_3x3", "conv2/3x3"),
        _lrn("conv2/norm2", "conv2/3x3"),
        _pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2),
    ]
    blob = "pool2/3x3_s2"
    for name, columns in GOOGLENET_INCEPTIONS.items():
        net += _inception(name, blob, columns, fillers)
        blob = f"inception_{name}/output"
        if name == "3b":
            net.append(_pool("pool3/3x3_s2", blob, "MAX", 3, 2))
            blob = "pool3/3x3_s2"
        elif name == "4e":
            net.append(_pool("pool4/3x3_s2", blob, "MAX", 3, 2))
            blob = "pool4/3x3_s2"
        elif not deploy and name == "4a":
            net += _aux_head(1, blob)
        elif not deploy and name == "4d":
            net += _aux_head(2, blob)
    net += [
        _pool("pool5/7x7_s1", blob, "AVE", 7, 1),
        _dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4),
        _fc("loss3/classifier", "pool5/7x7_s1", 1000, fillers=fillers),
    ]
    if deploy:
        net.append(layer("prob", "Softmax", ["loss3/classifier"], ["prob"]))
    else:
        net += _losses("loss3", "loss3/loss3", "loss3/loss3", "loss3/classifier", 1.0)
    return net


def _bn_scale(blob: str, suffix: str) -> Net:
    bn = layer(f"bn{suffix}", "BatchNorm", [blob], [blob], use_global_stats=True)
    scale = layer(f"scale{suffix}", "Scale", [blob], [blob], bias_term=True)
    return [bn, scale]


def small_resnet(batch: int = 1, size: int = 32, classes: int = 10) -> Net:
    """A small ResNet in Caffe's ResNet-50 style: conv without bias, in-place BatchNorm
    (use_global_stats) + Scale (bias_term) + ReLU, Eltwise SUM shortcuts, a ceil-rounded padded
    max pool, a downsampling block with non-square kernel_h/kernel_w convolutions, global AVE
    pooling, InnerProduct and Softmax. Input batch x 3 x size x size."""
    net: Net = [_input((batch, 3, size, size))]
    net[0]["comment"] = "deploy input; the BatchNorm layers use their stored statistics"
    conv1 = layer("conv1", "Convolution", ["data"], ["conv1"], num_output=16, bias_term=False)
    conv1["params"].update(kernel_h=3, kernel_w=3, pad=1)
    conv1["note"] = "3x3 written as kernel_h/kernel_w"
    net += [conv1, *_bn_scale("conv1", "_conv1"), _relu("conv1_relu", "conv1")]
    pool1 = _pool("pool1", "conv1", "MAX", 3, 2, pad=1)
    pool1["note"] = "ceil rounding: 32 -> 17"
    net.append(pool1)

    def block(name: str, bottom: str, channels: int, stride: int, project: bool) -> Net:
        out: Net = []
        shortcut = bottom
        if project:
            b1 = f"res{name}_branch1"
            conv = layer(b1, "Convolution", [bottom], [b1], num_output=channels, kernel_size=1)
            conv["params"].update(stride=stride, bias_term=False)
            out += [conv, *_bn_scale(b1, f"{name}_branch1")]
            shortcut = b1
        a, b = f"res{name}_branch2a", f"res{name}_branch2b"
        conv_a = layer(a, "Convolution", [bottom], [a], num_output=channels, bias_term=False)
        conv_b = layer(b, "Convolution", [a], [b], num_output=channels, bias_term=False)
        if project:
            # A 3x1 then a 1x3 convolution, to exercise kernel_h/kernel_w and pad_h/pad_w.
            conv_a["params"].update(kernel_h=3, kernel_w=1, pad_h=1, pad_w=0, stride=stride)
            conv_b["params"].update(kernel_h=1, kernel_w=3, pad_h=0, pad_w=1)
        else:
            conv_a["params"].update(kernel_size=3, pad=1)
            conv_b["params"].update(kernel_size=3, pad=1)
        out += [conv_a, *_bn_scale(a, f"{name}_branch2a"), _relu(f"res{name}_branch2a_relu", a)]
        out += [conv_b, *_bn_scale(b, f"{name}_branch2b")]
        out.append(layer(f"res{name}", "Eltwise", [shortcut, b], [f"res{name}"], operation="SUM"))
        out.append(_relu(f"res{name}_relu", f"res{name}"))
        out[0]["comment"] = f"residual block {name}"
        return out

    net += block("2a", "pool1", 16, 1, project=False)
    net += block("3a", "res2a", 32, 2, project=True)
    net.append(layer("pool5", "Pooling", ["res3a"], ["pool5"], pool="AVE", global_pooling=True))
    fc = layer("fc", "InnerProduct", ["pool5"], ["fc"], num_output=classes)
    net += [fc, layer("prob", "Softmax", ["fc"], ["prob"])]
    return net


def tiny_net() -> Net:
    """A tiny net on a 1 x 2 x 5 x 5 input that exercises grouped/padded/non-square convolution,
    LRN, ceil-rounded MAX and AVE pooling (the AVE one hits Caffe's last-window rule), Concat,
    Eltwise SUM, BatchNorm + Scale, InnerProduct and Softmax."""
    lrn = layer("norm1", "LRN", ["conv1"], ["norm1"], local_size=3, alpha=0.5, beta=0.75, k=2.0)
    conv2 = layer("conv2", "Convolution", ["cat"], ["conv2"], num_output=3, stride=2)
    conv2["params"].update(kernel_h=2, kernel_w=3, pad_h=0, pad_w=1)
    return [
        _input((1, 2, 5, 5)),
        layer(
            "conv1", "Convolution", ["data"], ["conv1"], num_output=4, kernel_size=3, pad=1, group=2
        ),
        _relu("relu1", "conv1"),
        lrn,
        _pool("pool_max", "norm1", "MAX", 2, 2),
        _pool("pool_ave", "norm1", "AVE", 2, 2, pad=1),
        layer("cat", "Concat", ["pool_max", "pool_ave"], ["cat"]),
        layer("sum", "Eltwise", ["pool_max", "pool_ave"], ["sum"], operation="SUM"),
        conv2,
        *_bn_scale("conv2", "_conv2"),
        layer("fc", "InnerProduct", ["conv2"], ["fc"], num_output=5),
        layer("prob", "Softmax", ["fc"], ["prob"]),
    ]


# ---------------------------------------------------------------------------------------------
# Prototxt text


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if key in ENUM_FIELDS:
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _fields(fields: dict[str, Any], indent: int) -> list[str]:
    pad = "  " * indent
    lines = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                lines.append(f"{pad}{key} {{")
                lines += _fields(item, indent + 1)
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{key}: {_scalar(key, item)}")
    return lines


def _shapes(entry: Layer) -> list[list[int]]:
    shape = entry["params"]["shape"]
    return [s["dim"] for s in (shape if isinstance(shape, list) else [shape])]


def to_prototxt(net: Net, name: str, style: str = "layer", inputs: str | None = None) -> str:
    """Caffe prototxt text for `net`.

    style: "layer" (modern `layer { type: "Convolution" ... param { lr_mult } }`) or "layers"
    (V1: `layers { type: CONVOLUTION ... blobs_lr weight_decay }`; no BatchNorm/Scale there).
    inputs: how Input layers are written: "layer" (an Input layer; style "layer" only),
    "input_shape" (`input: "data"` + `input_shape { dim: ... }`) or "input_dim" (the old
    `input: "data"` + four `input_dim:` lines). Default "layer" for style "layer", "input_dim"
    for "layers"."""
    if style not in ("layer", "layers"):
        raise ValueError(f"unknown style {style!r}")
    inputs = inputs or ("layer" if style == "layer" else "input_dim")
    if inputs not in ("layer", "input_shape", "input_dim"):
        raise ValueError(f"unknown inputs {inputs!r}")
    if style == "layers" and inputs == "layer":
        raise ValueError("V1 (`layers`) prototxt has no Input layer; use input_dim/input_shape")
    lines = [
        f"# {name}: written by tests/caffe_nets.py ({style} syntax, inputs as {inputs})",
        f'name: "{name}"  # the net\'s name',
    ]
    for entry in net:
        if entry["type"] != "Input" or inputs == "layer":
            continue
        for top, dims in zip(entry["tops"], _shapes(entry), strict=True):
            lines.append(f'input: "{top}"')
            if inputs == "input_dim":
                if len(dims) != 4:
                    raise ValueError(f"input_dim needs 4 dims per input, {top} has {dims}")
                lines += [f"input_dim: {d}" for d in dims]
            else:
                lines.append("input_shape { " + " ".join(f"dim: {d}" for d in dims) + " }")
    for entry in net:
        type_ = entry["type"]
        if type_ == "Input" and inputs != "layer":
            continue
        if "comment" in entry:
            lines.append(f"# {entry['comment']}")
        note = f"  # {entry['note']}" if "note" in entry else ""
        if style == "layer":
            lines += ["layer {", f'  name: "{entry["name"]}"{note}', f'  type: "{type_}"']
        else:
            if type_ not in V1_TYPES:
                raise ValueError(f"V1 prototxt has no layer type {type_}")
            lines += ["layers {", f'  name: "{entry["name"]}"{note}', f"  type: {V1_TYPES[type_]}"]
        lines += [f'  bottom: "{b}"' for b in entry["bottoms"]]
        lines += [f'  top: "{t}"' for t in entry["tops"]]
        if style == "layer":
            lines += _fields({"param": entry.get("param", [])}, 1)
        else:
            lines += [f"  blobs_lr: {_scalar('', p['lr_mult'])}" for p in entry.get("param", [])]
            lines += [
                f"  weight_decay: {_scalar('', p['decay_mult'])}" for p in entry.get("param", [])
            ]
        if "loss_weight" in entry:
            lines.append(f"  loss_weight: {_scalar('', entry['loss_weight'])}")
        if "phase" in entry:
            lines += ["  include {", f"    phase: {entry['phase']}", "  }"]
        if "transform" in entry:
            lines += _fields({"transform_param": entry["transform"]}, 1)
        if entry["params"]:
            lines += _fields({PARAM_MESSAGE[type_]: entry["params"]}, 1)
        lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Shapes and parameter counts


def layers_in_phase(net: Net, phase: str = "TEST") -> Net:
    """The layers of `net` that Caffe instantiates in `phase` (layers without a phase: all)."""
    return [entry for entry in net if entry.get("phase", phase) == phase]


def _geometry(params: dict[str, Any], kind: str) -> tuple[int, int, int, int, int, int]:
    """(kh, kw, sh, sw, ph, pw) of a convolution or pooling message."""

    def pair(single: str, prefix: str, default: int | None) -> tuple[int, int]:
        h, w = params.get(f"{prefix}_h"), params.get(f"{prefix}_w")
        if h is not None or w is not None:
            if h is None or w is None:
                raise ValueError(f"{kind} needs both {prefix}_h and {prefix}_w")
            return int(h), int(w)
        value = params.get(single, default)
        if value is None:
            raise ValueError(f"{kind} needs kernel_size or kernel_h/kernel_w")
        if isinstance(value, list):  # the repeated form: one value, or one per spatial axis
            return (int(value[0]), int(value[-1]))
        return int(value), int(value)

    kh, kw = pair("kernel_size", "kernel", None)
    sh, sw = pair("stride", "stride", 1)
    ph, pw = pair("pad", "pad", 0)
    return kh, kw, sh, sw, ph, pw


def conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's convolution output size: floor((size + 2 pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def pool_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooling output size: ceil rounding, then, with padding, drop a last window that
    would start at or beyond size + pad."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_geometry(params: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, ...]:
    if params.get("global_pooling", False):
        return shape[2], shape[3], 1, 1, 0, 0
    return _geometry(params, "Pooling")


def _top_shapes(entry: Layer, ins: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The shapes of a layer's tops from its bottoms' shapes."""
    type_, p = entry["type"], entry["params"]
    if type_ == "Input":
        return [tuple(dims) for dims in _shapes(entry)]
    if type_ == "Data":
        crop = entry.get("transform", {}).get("crop_size")
        if crop is None:
            raise ValueError("Data layer shapes need transform crop_size")
        batch = p["batch_size"]
        return [(batch, 3, crop, crop), (batch,)]  # 3 channels assumed (ImageNet)
    x = ins[0] if ins else ()
    if type_ == "Convolution":
        kh, kw, sh, sw, ph, pw = _geometry(p, "Convolution")
        n, _, h, w = x
        return [(n, p["num_output"], conv_out(h, kh, sh, ph), conv_out(w, kw, sw, pw))]
    if type_ == "Pooling":
        kh, kw, sh, sw, ph, pw = _pool_geometry(p, x)
        n, c, h, w = x
        return [(n, c, pool_out(h, kh, sh, ph), pool_out(w, kw, sw, pw))]
    if type_ == "InnerProduct":
        return [(x[0], p["num_output"])]
    if type_ == "Concat":
        axis = p.get("axis", 1)
        return [(*x[:axis], sum(s[axis] for s in ins), *x[axis + 1 :])]
    if type_ in ("SoftmaxWithLoss", "Accuracy"):
        return [()]
    if type_ == "Split":
        return [x] * len(entry["tops"])
    if type_ in ("ReLU", "LRN", "Dropout", "BatchNorm", "Scale", "Softmax", "Eltwise"):
        return [x]
    raise ValueError(f"unsupported layer type {type_}")


def blob_shapes(net: Net, phase: str = "TEST") -> dict[str, tuple[int, ...]]:
    """Every top's shape (NCHW; InnerProduct gives (N, C)) in `phase`."""
    shapes: dict[str, tuple[int, ...]] = {}
    for entry in layers_in_phase(net, phase):
        ins = [shapes[b] for b in entry["bottoms"]]
        for top, shape in zip(entry["tops"], _top_shapes(entry, ins), strict=True):
            shapes[top] = shape
    return shapes


def weight_shapes(net: Net) -> dict[str, list[tuple[int, ...]]]:
    """Caffe's blob shapes per layer with blobs: Convolution [(out, in/group, kh, kw), (out,)],
    InnerProduct [(out, in), (out,)] (bias only with bias_term, default true), BatchNorm
    [(C,), (C,), (1,)] (mean*s, var*s, s), Scale [(C,), (C,)] (gamma, beta if bias_term)."""
    shapes: dict[str, tuple[int, ...]] = {}
    out: dict[str, list[tuple[int, ...]]] = {}
    for entry in layers_in_phase(net, "TEST"):
        ins = [shapes[b] for b in entry["bottoms"]]
        type_, p = entry["type"], entry["params"]
        bias = bool(p.get("bias_term", True))
        if type_ == "Convolution":
            kh, kw, *_ = _geometry(p, "Convolution")
            group = p.get("group", 1)
            blobs = [(p["num_output"], ins[0][1] // group, kh, kw)]
            out[entry["name"]] = blobs + [(p["num_output"],)] * bias
        elif type_ == "InnerProduct":
            blobs = [(p["num_output"], int(np.prod(ins[0][1:])))]
            out[entry["name"]] = blobs + [(p["num_output"],)] * bias
        elif type_ == "BatchNorm":
            out[entry["name"]] = [(ins[0][1],), (ins[0][1],), (1,)]
        elif type_ == "Scale":
            out[entry["name"]] = [(ins[0][1],)] * (1 + bool(p.get("bias_term", False)))
        for top, shape in zip(entry["tops"], _top_shapes(entry, ins), strict=True):
            shapes[top] = shape
    return out


def param_count(net: Net, statistics: bool = False) -> int:
    """Learned parameters: Convolution and InnerProduct weights and biases plus Scale gamma and
    beta (the published counts; a BatchNorm + Scale pair gives 2C, as netspec counts one batch
    norm). With statistics=True, also BatchNorm's blobs (mean, variance, scale factor: 2C + 1),
    i.e. every value a .caffemodel stores."""
    total = 0
    types = {entry["name"]: entry["type"] for entry in net}
    for name, blobs in weight_shapes(net).items():
        if types[name] != "BatchNorm" or statistics:
            total += sum(int(np.prod(shape)) for shape in blobs)
    return total


def trainable_params(net: Net) -> int:
    """Conv + InnerProduct weights and biases + Scale gamma/beta; BatchNorm counts 0 (its blobs
    are statistics). Equal to param_count(net)."""
    return param_count(net, statistics=False)


def random_weights(net: Net, seed: int, dtype: Any = np.float32) -> dict[str, list[np.ndarray]]:
    """Random blobs in Caffe's layout: He-normal conv/fc weights (std sqrt(2 / fan_in)), biases
    N(0, 0.1^2); BatchNorm scale factor s ~ U(0.5, 2), mean*s with mean ~ N(0, 0.2^2), var*s with
    var ~ U(0.5, 1.5); Scale gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1^2)."""
    rng = np.random.default_rng(seed)
    types = {entry["name"]: entry["type"] for entry in net}
    out: dict[str, list[np.ndarray]] = {}
    for name, shapes in weight_shapes(net).items():
        type_ = types[name]
        if type_ in ("Convolution", "InnerProduct"):
            fan_in = int(np.prod(shapes[0][1:]))
            blobs = [rng.standard_normal(shapes[0], dtype=np.float32) * np.sqrt(2.0 / fan_in)]
            blobs += [0.1 * rng.standard_normal(s) for s in shapes[1:]]
        elif type_ == "BatchNorm":
            c = shapes[0][0]
            s = rng.uniform(0.5, 2.0)
            mean = 0.2 * rng.standard_normal(c)
            var = rng.uniform(0.5, 1.5, c)
            blobs = [mean * s, var * s, np.array([s])]
        else:  # Scale
            blobs = [rng.uniform(0.5, 1.5, shapes[0])]
            blobs += [0.1 * rng.standard_normal(s) for s in shapes[1:]]
        out[name] = [np.asarray(b, dtype=dtype) for b in blobs]
    return out


# ---------------------------------------------------------------------------------------------
# Forward pass


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> np.ndarray:
    """(N, C, oh, ow, kh, kw) view of the windows of an already padded NCHW array."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def convolution(x: np.ndarray, blobs: list[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """Caffe Convolution (cross-correlation) with group, pad, stride: im2col + matmul."""
    kh, kw, sh, sw, ph, pw = _geometry(params, "Convolution")
    group = params.get("group", 1)
    weight = blobs[0].astype(x.dtype, copy=False)
    n, c, h, w = x.shape
    out_c = weight.shape[0]
    oh, ow = conv_out(h, kh, sh, ph), conv_out(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cg, og = c // group, out_c // group
    outs = []
    for g in range(group):
        wg = weight[g * og : (g + 1) * og].reshape(og, -1)
        xg = xp[:, g * cg : (g + 1) * cg]
        if kh == kw == sh == sw == 1:
            cols = xg.transpose(0, 2, 3, 1).reshape(n * oh * ow, cg)
        else:
            win = _windows(xg, kh, kw, sh, sw, oh, ow)  # N, cg, oh, ow, kh, kw
            cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
        outs.append((cols @ wg.T).reshape(n, oh, ow, og))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if params.get("bias_term", True):
        y = y + blobs[1].astype(x.dtype, copy=False).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y)


def pooling(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Caffe Pooling MAX or AVE (ceil rounding; AVE divides by the window clipped to the padded
    input, MAX ignores padding)."""
    kh, kw, sh, sw, ph, pw = _pool_geometry(params, x.shape)
    h, w = x.shape[2:]
    oh, ow = pool_out(h, kh, sh, ph), pool_out(w, kw, sw, pw)
    extra_h = max(0, (oh - 1) * sh + kh - (h + 2 * ph))
    extra_w = max(0, (ow - 1) * sw + kw - (w + 2 * pw))
    pool = params.get("pool", "MAX")
    widths = ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w))
    if pool == "MAX":
        xp = np.pad(x, widths, constant_values=-np.inf)
        return _windows(xp, kh, kw, sh, sw, oh, ow).max(axis=(4, 5))
    if pool == "AVE":
        xp = np.pad(x, widths)
        sums = _windows(xp, kh, kw, sh, sw, oh, ow).sum(axis=(4, 5))

        def sizes(out: int, stride: int, pad: int, kernel: int, size: int) -> np.ndarray:
            start = np.arange(out) * stride - pad
            return np.minimum(start + kernel, size + pad) - start

        area = np.outer(sizes(oh, sh, ph, kh, h), sizes(ow, sw, pw, kw, w)).astype(x.dtype)
        return sums / area
    raise ValueError(f"unsupported pool {pool}")


def lrn(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Caffe LRN ACROSS_CHANNELS: x / (k + alpha / n * sum of x^2 over n channels around)^beta."""
    if params.get("norm_region", "ACROSS_CHANNELS") != "ACROSS_CHANNELS":
        raise NotImplementedError("LRN WITHIN_CHANNEL")
    size = params.get("local_size", 5)
    alpha, beta, k = params.get("alpha", 1.0), params.get("beta", 0.75), params.get("k", 1.0)
    pre = (size - 1) // 2
    sq = np.pad(x * x, ((0, 0), (pre, size - pre - 1), (0, 0), (0, 0)))
    cum = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
    window = cum[:, size:] - cum[:, : x.shape[1]]
    return x * (k + alpha / size * window) ** -beta


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Softmax over `axis` (Caffe's default: the channel axis)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _forward_layer(
    entry: Layer, blobs: list[np.ndarray], ins: list[np.ndarray]
) -> list[np.ndarray]:
    type_, p = entry["type"], entry["params"]
    x = ins[0]
    if type_ == "Convolution":
        return [convolution(x, blobs, p)]
    if type_ == "InnerProduct":
        y = x.reshape(x.shape[0], -1) @ blobs[0].astype(x.dtype, copy=False).T
        if p.get("bias_term", True):
            y = y + blobs[1].astype(x.dtype, copy=False)
        return [y]
    if type_ == "ReLU":
        slope = p.get("negative_slope", 0.0)
        return [np.where(x > 0, x, x * slope).astype(x.dtype, copy=False)]
    if type_ == "Pooling":
        return [pooling(x, p)]
    if type_ == "LRN":
        return [lrn(x, p)]
    if type_ in ("Dropout", "Split"):
        return [x] * len(entry["tops"])
    if type_ == "Concat":
        return [np.concatenate(ins, axis=p.get("axis", 1))]
    if type_ == "Eltwise":
        op = p.get("operation", "SUM")
        if op == "SUM":
            coeff = p.get("coeff", [1.0] * len(ins))
            return [sum(c * v for c, v in zip(coeff, ins, strict=True)).astype(x.dtype)]
        if op == "PROD":
            return [np.prod(np.stack(ins), axis=0)]
        return [np.max(np.stack(ins), axis=0)]
    if type_ == "BatchNorm":
        s = float(blobs[2].reshape(-1)[0])
        factor = 0.0 if s == 0 else 1.0 / s
        mean = _channel(blobs[0] * factor, x.ndim).astype(x.dtype)
        var = _channel(blobs[1] * factor, x.ndim).astype(x.dtype)
        return [(x - mean) / np.sqrt(var + x.dtype.type(p.get("eps", 1e-5)))]
    if type_ == "Scale":
        y = x * _channel(blobs[0], x.ndim).astype(x.dtype)
        if p.get("bias_term", False):
            y = y + _channel(blobs[1], x.ndim).astype(x.dtype)
        return [y]
    if type_ == "Softmax":
        return [softmax(x, p.get("axis", 1))]
    raise ValueError(f"unsupported layer type {type_}")


SKIPPED = {"SoftmaxWithLoss", "Accuracy"}


def caffe_forward(
    net: Net,
    weights: dict[str, list[np.ndarray]],
    x: np.ndarray,
    phase: str = "TEST",
    by_layer: bool = False,
) -> dict[str, np.ndarray]:
    """Caffe's test-time forward pass of `net` on the input blob `x` (NCHW; float32 stays
    float32, float64 stays float64, other dtypes become float32).

    Returns every top's value after the whole pass, keyed by top name (an in-place layer
    overwrites its bottom, as in Caffe), or, with by_layer=True, each layer's first output at
    the moment it was computed, keyed by layer name. Input/Data layers provide `x` as their
    first top ("data"); SoftmaxWithLoss and Accuracy layers (and anything needing "label") are
    skipped. Only layers in `phase` run; Dropout is the identity."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    values: dict[str, np.ndarray] = {}
    per_layer: dict[str, np.ndarray] = {}
    for entry in layers_in_phase(net, phase):
        type_ = entry["type"]
        if type_ in ("Input", "Data"):
            values[entry["tops"][0]] = x
            per_layer[entry["name"]] = x
            continue
        if type_ in SKIPPED or any(b not in values for b in entry["bottoms"]):
            continue
        ins = [values[b] for b in entry["bottoms"]]
        outs = _forward_layer(entry, weights.get(entry["name"], []), ins)
        for top, value in zip(entry["tops"], outs, strict=True):
            values[top] = value
        per_layer[entry["name"]] = outs[0]
    return per_layer if by_layer else values
