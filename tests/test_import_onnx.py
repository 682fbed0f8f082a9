"""`netspec import` of ONNX files and ONNX as a weights source.

Models are built here with `onnx.helper` (random initializers) and with netspec's own ONNX
exporter, read into the importer's graph (`onnx_reader.read`) and checked node by node, then
written as a spec (`writer.write_spec`), compiled, given the file's weights
(`load_weights(..., by="order")`) and run against onnxruntime on the same images. Parameter
counts are checked against the file's initializers counted here with NumPy. The torchvision
ResNet-18 test runs only where torch is installed (not in CI).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec import SpecError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from netspec.export.onnx_model import export_onnx  # noqa: E402
from netspec.importers import read_model  # noqa: E402
from netspec.importers.onnx_reader import OPSETS, read  # noqa: E402
from netspec.weights import load_weights, read_source  # noqa: E402

from .test_export_onnx import run_flax, small_model  # noqa: E402

TOLERANCE = 1e-4
"""max |netspec - onnxruntime| / max |onnxruntime| allowed."""

# ----------------------------------------------------------------------------- helpers


class Builder:
    """An ONNX graph under construction: `w:` initializers are parameters, `s:` batch-norm
    statistics, `k:` other constants (shapes, clip bounds)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, name: str, *shape: int) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        values = self.rng.standard_normal(shape) / np.sqrt(fan_in)
        return self.init(f"w:{name}", values.astype(np.float32))

    def node(self, op: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [f"{name}:out"], name=name, **attrs))
        return f"{name}:out"

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, bias: bool = True, **a) -> str:
        groups = int(a.get("group", 1))
        inputs = [x, self.weight(f"{name}.weight", cout, cin // groups, k, k)]
        if bias:
            inputs.append(self.weight(f"{name}.bias", cout))
        return self.node("Conv", inputs, name, kernel_shape=[k, k], **a)

    def bn(self, x: str, name: str, channels: int, **attrs: object) -> str:
        rng = self.rng
        inputs = [
            x,
            self.init(f"w:{name}.scale", rng.uniform(0.5, 1.5, channels).astype(np.float32)),
            self.init(f"w:{name}.bias", rng.normal(0, 0.5, channels).astype(np.float32)),
            self.init(f"s:{name}.mean", rng.normal(0, 0.5, channels).astype(np.float32)),
            self.init(f"s:{name}.var", rng.uniform(0.5, 1.5, channels).astype(np.float32)),
        ]
        return self.node("BatchNormalization", inputs, name, **attrs)

    def model(
        self, output: str, opset: int, shape: tuple = ("N", 3, 12, 12), out: tuple = ("N", 5)
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "tiny",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(out))],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, 10)  # what onnxruntime reads
        onnx.checker.check_model(model)
        return model


def tiny_network(opset: int = 17) -> onnx.ModelProto:
    """conv+bn+relu, ceil max pool, a residual block (conv, bn, Clip(0, 6), Add), a dilated
    depthwise conv with x * sigmoid(x), Concat, Dropout, global average pool, Flatten, Gemm
    (transB=1), Identity, Relu, MatMul + Add bias (its kernel an Identity of an initializer, its
    clip bound a Constant node): 12x12x3 -> 5 logits."""
    b = Builder()
    x = b.conv("x", "conv1", 3, 8, 3, pads=[1, 1, 1, 1])
    x = b.node("Relu", [b.bn(x, "bn1", 8, epsilon=1e-3, momentum=0.99)], "relu1")
    pool = b.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    y = b.bn(b.conv(pool, "conv2", 8, 8, 3, bias=False, pads=[1, 1, 1, 1]), "bn2", 8)
    zero = b.init("k:zero", np.float32(0.0))
    b.nodes.append(
        helper.make_node("Constant", [], ["k:six"], value=numpy_helper.from_array(np.float32(6)))
    )
    y = b.node("Clip", [y, zero, "k:six"], "clip2")
    res = b.node("Add", [pool, y], "add1")
    z = b.conv(pool, "dw3", 8, 8, 3, group=8, dilations=[2, 2], pads=[2, 2, 2, 2])
    z = b.node("Mul", [z, b.node("Sigmoid", [z], "gate3")], "silu3")
    cat = b.node("Concat", [res, z], "cat", axis=1)
    cat = b.node("Dropout", [cat], "drop")
    flat = b.node("Flatten", [b.node("GlobalAveragePool", [cat], "gap")], "flat", axis=1)
    fc1 = [flat, b.weight("fc1.weight", 10, 16), b.weight("fc1.bias", 10)]
    fc = b.node("Gemm", fc1, "fc1", transB=1)
    fc = b.node("Relu", [b.node("Identity", [fc], "same")], "relu_fc")
    kernel = b.node("Identity", [b.weight("fc2.weight", 10, 5)], "shared")
    out = b.node("Add", [b.node("MatMul", [fc, kernel], "fc2"), b.weight("fc2.bias", 5)], "bias")
    return b.model(out, opset)


WEIGHT_INPUTS = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1,),
    "Add": (0, 1),  # a MatMul's bias
    "BatchNormalization": (1, 2),  # scale and bias; inputs 3 and 4 are running statistics
    "LayerNormalization": (1, 2),
}


def initializer_params(model: onnx.ModelProto) -> int:
    """The parameters the file's layers use: the float initializers each weighted node reads
    (through Identity nodes: torch stores equal tensors once), counted once per use."""
    dims = {t.name: tuple(t.dims) for t in model.graph.initializer if t.data_type == 1}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in dims:
            dims[node.output[0]] = dims[node.input[0]]
    return sum(
        int(np.prod(dims[node.input[i]]))
        for node in model.graph.node
        for i in WEIGHT_INPUTS.get(node.op_type, ())
        if i < len(node.input) and node.input[i] in dims
    )


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def onnxruntime_output(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x_nchw})[0]


def relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours = ours.reshape(theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def write_spec_or_skip():
    writer = pytest.importorskip("netspec.importers.writer")
    return writer.write_spec


def round_trip(path: Path, x_nhwc: np.ndarray, nhwc_file: bool = False) -> tuple[int, float]:
    """Import `path`, compile the written spec, load the file's weights by order, and return
    the spec's parameters and the relative difference of its logits from onnxruntime's."""
    graph = read(path)
    spec = write_spec_or_skip()(graph)
    compiled = netspec.compile(spec.text)
    model = load_weights(compiled, path, by="order")
    ours = run_flax(model, x_nhwc)
    if compiled.generated.output_activation == "softmax":  # __call__ returns the logits
        ours = softmax(ours.reshape(ours.shape[0], -1))
    theirs = onnxruntime_output(path, x_nhwc if nhwc_file else x_nhwc.transpose(0, 3, 1, 2))
    return compiled.report.params, relative(ours, theirs)


def images(shape: tuple[int, int, int], batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


# ----------------------------------------------------------------------------- the reader


def test_tiny_network_reads_into_netspec_layers(tmp_path: Path) -> None:
    model = tiny_network()
    graph = read(save(model, tmp_path / "tiny.onnx"))
    assert graph.format == "ONNX (opset 17)"
    assert graph.input_shape == (12, 12, 3)
    assert [(n.name, n.op) for n in graph.nodes] == [
        ("conv1", "conv"),
        ("bn1", "batchnorm"),
        ("relu1", "relu"),
        ("pool1", "maxpool"),
        ("conv2", "conv"),
        ("bn2", "batchnorm"),
        ("clip2", "relu6"),
        ("add1", "add"),
        ("dw3", "conv"),
        ("silu3", "silu"),  # Mul(x, Sigmoid(x)): the Sigmoid is not a node of its own
        ("cat", "concat"),
        ("gap", "global_avgpool"),
        ("flat", "flatten"),
        ("fc1", "dense"),
        ("relu_fc", "relu"),  # Identity passed through
        ("fc2", "dense"),  # MatMul + Add of a bias
    ]
    node = graph.node
    assert node("conv1").fields == {
        "filters": 8,
        "kernel": 3,
        "stride": 1,
        "padding": 1,
        "dilation": 1,
        "groups": 1,
        "bias": True,
    }
    assert node("conv2").fields["bias"] is False
    assert (node("dw3").fields["groups"], node("dw3").fields["dilation"]) == (8, 2)
    assert node("bn1").fields == {"eps": 1e-3, "momentum": 0.99}
    assert node("pool1").fields == {"kernel": 3, "stride": 2, "padding": 0, "rounding": "ceil"}
    assert node("add1").inputs == ("pool1", "clip2")
    assert node("silu3").inputs == ("dw3",)
    assert node("cat").inputs == ("add1", "silu3")
    assert node("gap").inputs == ("cat",)  # the Dropout passed through
    assert node("fc1").fields == {"units": 10, "bias": True}
    assert node("fc2").fields == {"units": 5, "bias": True}
    assert graph.outputs == ["fc2"]
    expected = {
        "conv1": 8 * 3 * 9 + 8,
        "bn1": 16,
        "conv2": 8 * 8 * 9,
        "bn2": 16,
        "dw3": 8 * 9 + 8,
        "fc1": 16 * 10 + 10,
        "fc2": 10 * 5 + 5,
    }
    assert {n.name: n.params for n in graph.nodes if n.params} == expected
    assert graph.source_params == sum(expected.values()) == initializer_params(model)


@pytest.mark.parametrize("opset", [OPSETS[0], 13, 18, OPSETS[-1]])
def test_every_opset_in_range_reads(tmp_path: Path, opset: int) -> None:
    model = tiny_network(opset)
    graph = read(save(model, tmp_path / f"tiny{opset}.onnx"))
    assert graph.format == f"ONNX (opset {opset})"
    assert len(graph.nodes) == 16 and graph.source_params == initializer_params(model)


@pytest.mark.parametrize("opset", [10, 22])
def test_opsets_outside_the_range_are_refused(tmp_path: Path, opset: int) -> None:
    model = tiny_network(17)
    model.opset_import[0].version = opset
    path = tmp_path / "old.onnx"
    onnx.save(model, str(path))
    with pytest.raises(SpecError, match=f"opset {opset}; netspec reads opsets 11 to 21"):
        read(path)


def test_onnx_weights_source_is_in_torch_layout(tmp_path: Path) -> None:
    model = tiny_network()
    source = read_source(save(model, tmp_path / "tiny.onnx"))
    assert source.framework == "onnx" and source.layout == "torch" and source.ordered
    assert [(layer.name, layer.kind) for layer in source.layers] == [
        ("conv1", "conv"),
        ("bn1", "batchnorm"),
        ("conv2", "conv"),
        ("bn2", "batchnorm"),
        ("dw3", "conv"),
        ("fc1", "dense"),
        ("fc2", "dense"),
    ]
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    layers = {layer.name: layer for layer in source.layers}
    np.testing.assert_array_equal(layers["fc1"].tensors["kernel"], stored["w:fc1.weight"])
    np.testing.assert_array_equal(layers["fc2"].tensors["kernel"], stored["w:fc2.weight"].T)
    assert set(layers["bn1"].tensors) == {"scale", "bias", "mean", "var"}
    assert layers["conv2"].keys == {"kernel": "w:conv2.weight"}


# ----------------------------------------------------------------------------- end to end


def test_tiny_network_round_trip_matches_onnxruntime(tmp_path: Path) -> None:
    model = tiny_network()
    path = save(model, tmp_path / "tiny.onnx")
    params, difference = round_trip(path, images((12, 12, 3)))
    assert params == initializer_params(model) == 1_137
    assert difference < TOLERANCE


HAND_SPEC = """name: hand
input: [15, 16, 3]
layers:
  - c1: conv 3x3/2 8 same relu
  - b1: batchnorm
  - p1: maxpool 3x3/2 padding=1
  - a: conv 3x3 8 silu padding=1
  - a2: conv 1x1 8 hardswish
  - s: add from=[p1, a2]
  - br: conv 1x1 4 sigmoid from=p1
  - cat: concat from=[s, br]
  - up: upsample 2
  - ap: avgpool 3x3/2 padding=1 count_include_pad=false
  - lrn: lrn 3 alpha=2e-4 beta=0.7 k=2
  - f: flatten
  - d: dense 10 relu6
  - o: dense 5 softmax
"""


def test_netspec_export_round_trip(tmp_path: Path) -> None:
    """netspec's own exports read back: an NHWC input, a flatten of a channels-last tensor (the
    dense kernel's rows in H, W, C order), Gemm with transB=0, explicit `same` pads."""
    compiled = netspec.compile(HAND_SPEC)
    path = save(export_onnx(compiled, small_model(compiled)), tmp_path / "hand.onnx")
    graph = read(path)
    assert graph.input_shape == (15, 16, 3) and "channels-last" in graph.notes[0]
    assert graph.node("c1").fields["padding"] == "same"
    assert graph.node("lrn").fields == {"size": 3, "alpha": 2e-4, "beta": 0.7, "k": 2.0}
    assert graph.node("up").fields == {"factor": 2, "mode": "nearest"}
    assert graph.node("o/softmax").op == "softmax"
    assert graph.source_params == compiled.report.params
    params, difference = round_trip(path, images((15, 16, 3)), nhwc_file=True)
    assert params == compiled.report.params
    assert difference < TOLERANCE


@pytest.mark.parametrize("name", ["lenet5", "resnet18_cifar"])
def test_zoo_spec_export_round_trip(tmp_path: Path, name: str) -> None:
    compiled = netspec.compile(name)
    path = save(export_onnx(compiled, small_model(compiled)), tmp_path / f"{name}.onnx")
    assert read(path).source_params == compiled.report.params
    params, difference = round_trip(path, images(compiled.graph.input_shape), nhwc_file=True)
    assert params == compiled.report.params
    assert difference < TOLERANCE


# ----------------------------------------------------------------------------- bad input


def test_unsupported_op_names_the_node_and_the_supported_ops(tmp_path: Path) -> None:
    b = Builder()
    x = b.conv("x", "conv1", 3, 4, 3)
    y = b.node("Einsum", [x], "mystery", equation="nchw->nchw")
    b.node("LpNormalization", [y], "norm")
    path = save(b.model("norm:out", 17, out=("N", 4, 10, 10)), tmp_path / "einsum.onnx")
    with pytest.raises(SpecError) as caught:
        read(path)
    text = str(caught.value)
    assert "node 'mystery' is an ONNX Einsum" in text
    assert "1 more nodes of unsupported ops: LpNormalization" in text
    assert "supported ONNX ops: " in text and "Conv" in text and "Gemm" in text


def test_constant_operands_are_refused_by_node(tmp_path: Path) -> None:
    b = Builder()
    x = b.conv("x", "conv1", 3, 4, 3)
    b.node("Mul", [x, b.init("k:half", np.float32(0.5))], "halve")
    with pytest.raises(SpecError, match=r"node 'halve' \(Mul\): Mul with the constant"):
        read(save(b.model("halve:out", 17, out=("N", 4, 10, 10)), tmp_path / "mul.onnx"))


def test_dynamic_image_size_is_refused(tmp_path: Path) -> None:
    b = Builder()
    b.conv("x", "conv1", 3, 4, 3)
    shape, out = ("N", 3, "H", "W"), ("N", 4, "h", "w")
    path = save(b.model("conv1:out", 17, shape, out), tmp_path / "dynamic.onnx")
    with pytest.raises(SpecError, match="fixed C, H and W"):
        read(path)


@pytest.mark.parametrize("content", [b"", b"not an ONNX model\x00\xff\xfe" * 7])
def test_a_file_that_is_not_onnx_is_a_spec_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=r"not (a readable |an )ONNX model"):
        read_model(path)
    with pytest.raises(SpecError, match=r"not (a readable |an )ONNX model"):
        read_source(path)


def test_cli_import_of_a_bad_file_exits_2(tmp_path: Path, capsys) -> None:
    from netspec.cli import main

    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage")
    assert main(["import", str(path)]) == 2
    assert "error:" in capsys.readouterr().err


# ----------------------------------------------------------------------------- torchvision


def torch_export(module: object, path: Path, size: int, **options: object) -> Path:
    torch = pytest.importorskip("torch")
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    torch.onnx.export(
        module,
        torch.zeros(1, 3, size, size),
        str(path),
        opset_version=17,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        **options,
    )
    return path


@pytest.mark.filterwarnings("ignore")
def test_torchvision_resnet18(tmp_path: Path) -> None:
    """torchvision's ResNet-18 (11,689,512 parameters). An eval-mode export folds each batch
    norm into the conv before it (4,800 batch-norm channels: their 9,600 scales and biases
    become 4,800 conv biases); a training-mode export keeps them."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    training = torch_export(
        model, tmp_path / "train.onnx", 64, training=torch.onnx.TrainingMode.TRAINING
    )
    graph = read(training)
    assert graph.source_params == 11_689_512
    assert sum(n.op == "batchnorm" for n in graph.nodes) == 20
    assert any("training mode" in note for note in graph.notes)
    model.eval()
    path = torch_export(model, tmp_path / "resnet18.onnx", 64)
    assert read(path).source_params == 11_689_512 - 4_800 == initializer_params(onnx.load(path))
    params, difference = round_trip(path, images((64, 64, 3)))
    assert params == 11_689_512 - 4_800
    assert difference < TOLERANCE


# ------------------------------------------------------- activations written out in several nodes


def spelled_out(kind: str, b: Builder, x: str) -> str:
    """`kind` the way exporters write it before it had its own op (torch's order of Muls)."""

    def k(name: str, value: float) -> str:
        return b.init(f"k:{name}", np.float32(value))

    if kind == "gelu":  # torch < opset 20: x * (erf(x / sqrt 2) + 1) * 0.5
        erf = b.node("Erf", [b.node("Div", [x, k("r2", 2**0.5)], "div")], "erf")
        cdf = b.node("Add", [erf, k("one", 1.0)], "cdf")
        return b.node("Mul", [b.node("Mul", [x, cdf], "xcdf"), k("half", 0.5)], "gelu")
    if kind == "gelu_tanh":  # with Pow(x, 3)
        cube = b.node("Pow", [x, k("three", 3.0)], "cube")
        inner = b.node("Add", [x, b.node("Mul", [cube, k("c", 0.044715)], "c3")], "inner")
        scaled = b.node("Mul", [inner, k("s", (2 / np.pi) ** 0.5)], "scaled")
        cdf = b.node("Add", [b.node("Tanh", [scaled], "tanh"), k("one", 1.0)], "cdf")
        return b.node("Mul", [b.node("Mul", [k("half", 0.5), x], "hx"), cdf], "gelu_tanh")
    if kind == "mish":
        return b.node("Mul", [x, b.node("Tanh", [b.node("Softplus", [x], "sp")], "t")], "mish")
    if kind == "hardswish":  # x * Clip(x + 3, 0, 6) / 6
        shifted = b.node("Add", [x, k("three", 3.0)], "plus3")
        clipped = b.node("Clip", [shifted, k("zero", 0.0), k("six", 6.0)], "clip")
        return b.node("Div", [b.node("Mul", [x, clipped], "xclip"), k("div6", 6.0)], "hswish")
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "mish", "hardswish"])
def test_activations_spelled_out_in_nodes_are_recognised(tmp_path: Path, kind: str) -> None:
    b = Builder(3)
    x = b.conv("x", "conv", 3, 6, 3, pads=[1, 1, 1, 1])
    y = spelled_out(kind, b, x)
    flat = b.node("Flatten", [b.node("GlobalAveragePool", [y], "gap")], "flat", axis=1)
    out = b.node(
        "Gemm", [flat, b.weight("fc.weight", 5, 6), b.weight("fc.bias", 5)], "fc", transB=1
    )
    path = save(b.model(out, 17), tmp_path / f"{kind}.onnx")
    graph = read(path)
    assert [n.op for n in graph.nodes] == ["conv", kind, "global_avgpool", "flatten", "dense"]
    _, difference = round_trip(path, images((12, 12, 3)))
    assert difference < TOLERANCE


def test_a_near_miss_is_not_taken_for_an_activation(tmp_path: Path) -> None:
    """x * (erf(x / 1.5) + 1) * 0.5 is no netspec activation: Erf stays an unsupported op."""
    b = Builder(4)
    x = b.conv("x", "conv", 3, 6, 3, pads=[1, 1, 1, 1])
    scaled = b.node("Div", [x, b.init("k:d", np.float32(1.5))], "div")
    cdf = b.node("Add", [b.node("Erf", [scaled], "erf"), b.init("k:1", np.float32(1))], "cdf")
    y = b.node("Mul", [b.node("Mul", [x, cdf], "xcdf"), b.init("k:h", np.float32(0.5))], "y")
    out = b.node("GlobalAveragePool", [y], "gap")
    path = save(b.model(out, 17, out=("N", 6, 1, 1)), tmp_path / "near.onnx")
    with pytest.raises(SpecError, match="Erf"):
        read(path)
