"""The ONNX back end against onnxruntime: every zoo spec and every layer type (with the
parameters where ONNX and netspec conventions part: ceil rounding, pads, `same`, output
padding, resize coordinates, ...) is exported, checked by onnx's checker, run by onnxruntime
and compared with the Flax model's eval-mode output, for a batch of 2 and then of 3 images."""

from __future__ import annotations

import os
import re

import jax
import numpy as np
import pytest
from flax import nnx

import netspec
from netspec import SpecError
from netspec.emit import state_path
from netspec.layers import REGISTRY

from .conftest import SPECS
from .zoo_builds import built

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from netspec.export import onnx_ops  # noqa: E402  (needs onnx)
from netspec.export.onnx_model import export_onnx  # noqa: E402

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))
TOLERANCE = 1e-4
"""max |onnxruntime - Flax| / max |Flax| allowed (float32 differences are about 1e-6)."""


def run_flax(model: nnx.Module, x: np.ndarray) -> np.ndarray:
    """`model(x, train=False)`, jitted without XLA's backend optimisations (compiles faster)."""
    graphdef, state = nnx.split(model)
    forward = jax.jit(
        lambda state, x: nnx.merge(graphdef, state)(x, train=False),
        compiler_options={"xla_backend_optimization_level": 0},
    )
    return np.asarray(forward(state, x))


def session(proto: onnx.ModelProto) -> ort.InferenceSession:
    """An onnxruntime CPU session with basic graph optimisations (the extended ones take
    seconds on VGG-16's 553 MB); one thread per pytest-xdist worker."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if os.environ.get("PYTEST_XDIST_WORKER"):
        options.intra_op_num_threads = 1
    return ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def compare(
    compiled: netspec.Compiled,
    model: nnx.Module,
    *,
    opset: int = 17,
    scale: float = 1.0,
    seed: int = 0,
) -> tuple[onnx.ModelProto, float]:
    """Export, run a batch of 2 and then of 3 normal images (times `scale`) in onnxruntime,
    and return the model and the largest max |difference| / max |Flax output| (checked
    against TOLERANCE). The Flax output of the 3 images is computed once: in eval mode each
    image's output does not depend on the others."""
    proto = export_onnx(compiled, model, opset=opset)
    shape = compiled.graph.input_shape
    x = np.random.default_rng(seed).standard_normal((3, *shape)).astype(np.float32) * scale
    expected = run_flax(model, x)
    runner = session(proto)
    worst = 0.0
    for size in (2, 3):
        (out,) = runner.run(["logits"], {"images": x[:size]})
        want = expected[:size]
        assert out.shape == want.shape
        finite = np.isfinite(want)  # a max pool window of padding only gives -inf
        np.testing.assert_array_equal(out[~finite], want[~finite])
        difference = np.abs(out[finite] - want[finite]).max() / np.abs(want[finite]).max()
        worst = max(worst, float(difference))
    assert worst < TOLERANCE, f"relative difference {worst:.3g}"
    return proto, worst


def draw(generator: np.random.Generator, name: str, shape: tuple, spread: float) -> np.ndarray:
    """Random float32 values for the variable `name`: batch-norm variances near 1, scales and
    layer-scale gammas near 1, kernels normal / sqrt(fan-in), anything else (biases, means)
    normal around 0; `spread` scales the deviations."""
    if name == "var":
        values = generator.uniform(1 - 0.5 * spread, 1 + spread, shape)
    elif name in ("scale", "gamma"):
        values = generator.uniform(1 - 0.5 * spread, 1 + 0.5 * spread, shape)
    elif name == "kernel":
        values = generator.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    else:
        values = generator.normal(0.0, 0.5 * spread, shape)
    return values.astype(np.float32)


def randomised(model: nnx.Module, seed: int = 1, spread: float = 1.0) -> nnx.Module:
    """A module of the same structure whose biases, norm scales, layer-scale gammas and batch
    statistics are random (so inference-mode batch norm really uses its running mean and
    variance); kernels keep their initialisation. The original module is left unchanged."""
    generator = np.random.default_rng(seed)
    graphdef, variables, rest = nnx.split(model, nnx.Any(nnx.Param, nnx.BatchStat), ...)
    variables = nnx.from_flat_state(
        [
            (
                path,
                v if path[-1] == "kernel" else v.copy(draw(generator, path[-1], v.shape, spread)),
            )
            for path, v in nnx.to_flat_state(variables)
        ]
    )
    return nnx.merge(graphdef, variables, rest)


def small_model(compiled: netspec.Compiled, seed: int = 0) -> nnx.Module:
    """The network built abstractly and given random values (see `draw`) without compiling
    anything: `build()` compiles its initialisation, seconds for a few layers."""
    cls = compiled.network_class()
    graphdef, state = nnx.split(nnx.eval_shape(lambda: cls(rngs=nnx.Rngs(seed))))
    generator = np.random.default_rng(seed)

    def concrete(path: tuple, abstract: jax.ShapeDtypeStruct) -> jax.Array:
        if jax.dtypes.issubdtype(abstract.dtype, jax.dtypes.prng_key):
            return jax.random.key(seed)  # a dropout stream's key (unused in eval mode)
        if not jax.numpy.issubdtype(abstract.dtype, jax.numpy.floating):
            return jax.numpy.zeros(abstract.shape, abstract.dtype)
        return jax.numpy.asarray(draw(generator, path[-1], abstract.shape, 1.0))

    state = nnx.from_flat_state(
        [(path, v.copy(concrete(path, v.get_value()))) for path, v in nnx.to_flat_state(state)]
    )
    return nnx.merge(graphdef, state)


def onnx_names(proto: onnx.ModelProto) -> tuple[set[str], set[str]]:
    """The node names and the initializer names of an exported model."""
    return {n.name for n in proto.graph.node}, {t.name for t in proto.graph.initializer}


# ----------------------------------------------------------------------------- the zoo


def zoo_model(name: str) -> tuple[netspec.Compiled, nnx.Module]:
    """The zoo spec, as shared with the other full-size tests; U-Net (48 G multiply-adds per
    image at 256x256) at 64x64 and width 8."""
    if name == "unet":
        compiled = netspec.compile(SPECS / "unet.yaml", size=64, width=8)
        return compiled, compiled.build(seed=0)
    return built(name)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xdist_group(f"zoo-{n}")) for n in ZOO]
)
def test_zoo_spec_matches_flax_in_onnxruntime(name: str, record_property) -> None:
    """Batch statistics, biases and scales are perturbed a little (random statistics at full
    strength compound over a deep network); the layer tests below use large ones."""
    compiled, model = zoo_model(name)
    proto, worst = compare(compiled, randomised(model, spread=0.2))
    record_property("max_relative_difference", worst)  # in --junitxml reports
    nodes, initializers = onnx_names(proto)
    graph = compiled.graph
    for node in graph.nodes:
        if node.train_only:
            assert node.name not in nodes  # auxiliary heads are left out
        elif node.op in ("conv", "dense"):
            assert node.name in nodes and f"{node.name}/kernel" in initializers
    assert [
        d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim
    ] == [
        "batch",
        *graph.input_shape,
    ]


# ----------------------------------------------------------------------------- layer types


def spec(rows: list[str], size: tuple[int, int, int]) -> str:
    """A network of `rows` (`name: row` or a bare row, named r0, r1, ...) on an HxWxC input,
    ending in an identity row so that a final softmax row is exported too."""
    h, w, c = size
    lines = [f"name: t\ninput: [{h}, {w}, {c}]\nlayers:"]
    for index, row in enumerate(rows):
        lines.append(f"  - {row}" if re.match(r"\w+: ", row) else f"  - r{index}: {row}")
    lines.append("  - end: dropout 0.5")
    return "\n".join(lines) + "\n"


def exported(rows: list[str], size: tuple[int, int, int], **kwargs: object) -> float:
    compiled = netspec.compile(spec(rows, size))
    return compare(compiled, small_model(compiled), **kwargs)[1]


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_every_layer_type_exports_its_example(op: str) -> None:
    """A new layer type fails here until netspec/export/onnx_ops.py has its converter."""
    layer = REGISTRY[op]
    assert onnx_ops.converter_for(op) is not None, f"no ONNX converter for {op!r}"
    exported([layer.example], layer.example_input, scale=3.0)


CASES: dict[str, tuple[tuple[int, int, int], list[str]]] = {
    "maxpool ceil": ((8, 8, 4), ["maxpool 3x3/2 ceil"]),
    "maxpool ceil padded": ((9, 10, 4), ["maxpool 3x3/2 ceil padding=1"]),
    "maxpool same odd": ((7, 9, 4), ["maxpool 3x3/2 same"]),
    "maxpool padding beyond window": ((6, 7, 4), ["maxpool 2x2/2 padding=2"]),
    "maxpool 1x3": ((7, 9, 4), ["maxpool 1x3/1 padding=[0, 1]"]),
    "avgpool ceil count pads": ((8, 8, 4), ["avgpool 3x3/2 ceil padding=1"]),
    "avgpool ceil skip pads": ((8, 8, 4), ["avgpool 3x3/2 ceil padding=1 count_include_pad=false"]),
    "avgpool ceil unpadded": ((7, 9, 4), ["avgpool 2x2/2 ceil"]),
    "avgpool same count pads": ((7, 9, 4), ["avgpool 3x3/2 same"]),
    "avgpool same skip pads": ((7, 9, 4), ["avgpool 3x3/2 same count_include_pad=false"]),
    "avgpool padding beyond window": ((6, 7, 4), ["avgpool 2x2/2 padding=2"]),
    "avgpool asymmetric pads": ((8, 9, 4), ["avgpool 3x3/2 ceil padding=[[1, 0], [0, 1]]"]),
    "conv same stride 2 odd": ((7, 9, 3), ["conv 3x3/2 8 same"]),
    "conv same even kernel": ((7, 8, 3), ["conv 4x4/2 8 same relu"]),
    "conv grouped dilated": ((9, 9, 8), ["conv 3x3 12 elu groups=4 dilation=2 padding=same"]),
    "conv depthwise dilated": (
        (9, 10, 8),
        ["conv 3x3 8 groups=8 dilation=[1, 2] padding=[[2, 1], [0, 3]] bias=false"],
    ),
    "conv 1x7": ((7, 7, 3), ["conv 1x7 8 hardswish padding=[0, 3]"]),
    "conv_transpose groups output_padding": (
        (5, 6, 4),
        ["conv_transpose 3x3/2 6 padding=1 output_padding=1 groups=2"],
    ),
    "conv_transpose same": ((5, 6, 4), ["conv_transpose 3x3/2 6 same gelu"]),
    "conv_transpose kernel below stride": ((5, 6, 4), ["conv_transpose 1x1/2 6 same"]),
    "conv_transpose 4x4": ((5, 6, 4), ["conv_transpose 4x4/2 6 padding=1 bias=false"]),
    "upsample nearest factor": ((5, 6, 3), ["upsample [2, 3]"]),
    "upsample bilinear factor": ((5, 6, 3), ["upsample 2 bilinear"]),
    "upsample nearest size": ((26, 14, 3), ["upsample size=[22, 46]"]),
    "upsample bilinear size": ((3, 5, 3), ["upsample bilinear size=[7, 12]"]),
    "upsample bilinear shrink": ((9, 8, 3), ["upsample bilinear size=[4, 1]"]),
    "broadcast add": (
        (6, 5, 8),
        [
            "gate: global_avgpool",
            "mask: conv 1x1 1 from=input",
            "sum: add from=[input, gate, mask]",
        ],
    ),
    "multiply gate": (
        (6, 5, 8),
        ["pool: global_avgpool", "fc: dense 8 sigmoid", "scaled: multiply from=[input, fc]"],
    ),
    "flat rows": (
        (4, 4, 6),
        [
            "pool: global_avgpool",
            "fc: dense 12 silu",
            "bn: batchnorm",
            "ln: layernorm",
            "gn: groupnorm 3",
            "ls: layer_scale 0.5",
            "side: dense 12 from=fc",
            "sum: add from=[ls, side]",
            "both: concat from=[sum, side]",
            "part: slice 2 20",
            "shuffled: channel_shuffle 2",
            "act: softmax",
        ],
    ),
    "flatten dense": ((4, 5, 3), ["flatten", "dense 10 relu", "dense 7"]),
    "channels": (
        (6, 6, 12),
        [
            "a: slice -6 -2",
            "b: split 3 1 from=input",
            "ab: concat from=[a, b]",
            "channel_shuffle 4",
        ],
    ),
    "norms without affine": (
        (5, 5, 8),
        ["groupnorm 2 scale=false center=false", "layernorm center=false", "bn scale=false"],
    ),
    "lrn k=2": ((6, 6, 9), ["lrn 3 alpha=0.5 beta=0.6 k=2"]),
}


@pytest.mark.parametrize("case", CASES)
def test_tricky_parameters(case: str) -> None:
    size, rows = CASES[case]
    exported(rows, size, scale=3.0)


ACTIVATION_NAMES = sorted(
    {REGISTRY[name].presets["fn"] for name in REGISTRY if REGISTRY[name].preset_of} | {"gelu"}
)


@pytest.mark.parametrize("opset", [17, 20])
def test_every_activation_at_both_spellings(opset: int) -> None:
    """Opset 17 spells gelu, gelu_tanh and mish out; 20 has Gelu and Mish ops."""
    rows = [f"{fn}: activation {fn} from=input" for fn in ACTIVATION_NAMES]
    rows.append("all: concat from=[" + ", ".join(ACTIVATION_NAMES) + "]")
    exported(rows, (3, 4, 5), opset=opset, scale=4.0)


def test_final_softmax_and_auxiliary_heads_are_left_out() -> None:
    """The output is the logits the Flax model returns: no final softmax, no aux head."""
    text = (
        "name: t\ninput: [6, 6, 3]\nlayers:\n"
        "  - c: conv 3x3 4 relu\n"
        "  - pool: global_avgpool\n"
        "  - side: dense 5 from=pool aux=0.3\n"
        "  - fc: dense 5 from=pool\n"
        "  - prob: softmax\n"
    )
    compiled = netspec.compile(text)
    proto, _ = compare(compiled, small_model(compiled))
    nodes, _ = onnx_names(proto)
    assert "side" not in nodes and "prob" not in nodes and "fc" in nodes
    assert {p.key: p.value for p in proto.metadata_props}["netspec.output_activation"] == "softmax"


def test_per_pixel_output_is_nhwc() -> None:
    compiled = netspec.compile(spec(["conv 3x3 4 same", "upsample 2 bilinear"], (5, 6, 3)))
    proto, _ = compare(compiled, small_model(compiled))
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 10, 12, 4]


# ----------------------------------------------------------------------------- errors


def test_a_type_without_converter_is_a_located_spec_error(monkeypatch) -> None:
    text = "name: t\ninput: [6, 6, 8]\nlayers:\n  - c: conv 3x3 8\n  - norm: lrn 5\n"
    compiled = netspec.compile(text)
    model = small_model(compiled)
    monkeypatch.delitem(onnx_ops.CONVERTERS, "lrn")
    with pytest.raises(SpecError) as info:
        export_onnx(compiled, model)
    message = str(info.value)
    assert message.startswith("<text>:5:11: norm: "), message
    assert "norm" in message and "'lrn'" in message
    assert "types that export: " in message and "conv" in message
    assert "lrn" not in message.split("types that export: ")[1].split(", ")


def test_an_inexpressible_combination_is_a_located_spec_error() -> None:
    text = (
        "name: t\ninput: [6, 6, 8]\nlayers:\n"
        "  - pool: avgpool 2x2/2 padding=2 count_include_pad=false\n"
    )
    compiled = netspec.compile(text)
    with pytest.raises(SpecError) as info:
        export_onnx(compiled, small_model(compiled))
    assert info.value.field == "padding"
    assert str(info.value).startswith("<text>:4:33: pool: padding: avgpool cannot be exported")
    assert "count_include_pad" in str(info.value)


def test_converters_are_registered_once_and_opsets_checked() -> None:
    with pytest.raises(RuntimeError, match="two ONNX converters"):
        onnx_ops.onnx_converter("conv")(lambda g, call: call.x)
    compiled = netspec.compile(spec(["relu"], (2, 2, 1)))
    with pytest.raises(ValueError, match="opset"):
        export_onnx(compiled, small_model(compiled), opset=11)


@pytest.mark.xdist_group("zoo-inception10")
def test_parameters_are_read_by_state_path() -> None:
    compiled, model = built("inception10")
    proto = export_onnx(compiled, model)
    node = next(n for n in compiled.graph.nodes if n.op == "conv" and "/" in n.name)
    module = model
    for part in state_path(node.name):
        module = module[part] if isinstance(part, int) else getattr(module, part)
    tensor = next(t for t in proto.graph.initializer if t.name == f"{node.name}/kernel")
    kernel = onnx.numpy_helper.to_array(tensor)
    np.testing.assert_array_equal(kernel, np.asarray(module.kernel[...]).transpose(3, 2, 0, 1))
