"""The compiled Flax NNX modules: counts, forward/backward, XLA's FLOPs, ejected source, dtypes.

Every zoo spec is built once at its published input size (module-level cache) and reused.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import netspec
from netspec.check import check_against_flax
from netspec.emit import state_path
from netspec.layers import REGISTRY
from netspec.shapes import pair, resolve_padding

from .conftest import SPECS
from .test_zoo_modern import NAMES as MODERN
from .zoo_builds import built

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))


def quick_jit(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function(model, *args)` jitted without XLA's backend optimisations: full-size zoo
    programs compile in about a third of the time, and these tests run each once or twice.
    The model is passed as its state, so what `function` changes in it is not kept."""

    def run(model: nnx.Module, *args: Any) -> Any:
        graphdef, state = nnx.split(model)
        jitted = jax.jit(
            lambda state, *args: function(nnx.merge(graphdef, state), *args),
            compiler_options={"xla_backend_optimization_level": 0},
        )
        return jitted(state, *args)

    return run


def batch(compiled: netspec.Compiled, size: int = 2, seed: int = 0) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (size, *compiled.graph.input_shape))


def flat_params(model: nnx.Module, kind: type = nnx.Param) -> dict[tuple, jax.Array]:
    return {tuple(path): value for path, value in nnx.to_flat_state(nnx.state(model, kind))}


@pytest.mark.parametrize("name", ZOO)
def test_built_parameters_match_the_analysis_node_by_node(name):
    compiled, model = built(name)
    for kind, attribute in ((nnx.Param, "params"), (nnx.BatchStat, "state")):
        per_module: dict[tuple, int] = {}
        for path, value in flat_params(model, kind).items():
            per_module[path[:-1]] = per_module.get(path[:-1], 0) + value.size
        expected = {
            state_path(n.name): getattr(n, attribute)
            for n in compiled.report.nodes
            if getattr(n, attribute)
        }
        assert per_module == expected
    assert sum(v.size for v in flat_params(model).values()) == compiled.report.params


@pytest.mark.parametrize("name", sorted(set(ZOO) - set(MODERN)))
def test_forward_and_backward(name):
    """(The modern zoo's full-size step, with SGD updates, is in test_zoo_modern.py.)"""
    compiled, model = built(name)
    height, width, classes = compiled.report.output_shape
    per_pixel = (height, width) != (1, 1)  # a segmentation net: one label per output pixel
    size = 1 if per_pixel else 2  # a U-Net at full size does 48 G multiply-adds per image
    x = batch(compiled, size=size)
    labels = jnp.arange(size * height * width).reshape(size, height, width) % classes
    if not per_pixel:
        labels = labels.reshape(size)
    heads = dict(compiled.graph.heads and [(h.row, h.weight) for h in compiled.graph.heads])

    @quick_jit
    def loss_and_grads(model, x):
        def loss_fn(model):
            out = model(x, train=True)
            outputs = out if isinstance(out, dict) else {"main": out}
            loss = sum(
                model.loss_weights[key]
                * optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
                for key, logits in outputs.items()
            )
            return loss, out

        return nnx.value_and_grad(loss_fn, has_aux=True)(model)

    # One compiled program gives the loss, the gradients and the training outputs (every head).
    (loss, out), grads = loss_and_grads(model, x)
    assert np.isfinite(float(loss))
    # Checked in NumPy: eager jnp ops would compile a small kernel per parameter shape.
    leaves = [np.asarray(g) for g in jax.tree.leaves(nnx.state(grads, nnx.Param))]
    assert all(np.isfinite(g).all() for g in leaves)
    nonzero = sum(bool(np.any(g != 0)) for g in leaves)
    assert nonzero == len(leaves), f"{len(leaves) - nonzero} parameters get no gradient"

    logits = quick_jit(lambda m, x: m(x))(model, x)
    assert logits.shape == ((size, height, width, classes) if per_pixel else (size, classes))
    assert bool(jnp.all(jnp.isfinite(logits)))
    if heads:
        assert set(out) == {"main", *heads}
        assert model.loss_weights == {"main": 1.0, **heads}
        assert all(v.shape == (size, classes) for v in out.values())


def valid_taps(
    size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int, out: int
) -> int:
    """Kernel taps that land inside the input (not in padding), summed over output positions."""
    return sum(
        1
        for o in range(out)
        for t in range(kernel)
        if 0 <= o * stride - pads[0] + t * dilation < size
    )


def multiply_adds_on_real_inputs(compiled: netspec.Compiled) -> int:
    """The analysis counts every kernel tap (as the papers and torchvision do); XLA leaves out
    taps over padding. This recounts conv and dense multiply-adds the XLA way, per node."""
    shapes = {"input": compiled.graph.input_shape}
    shapes |= {n.name: n.output_shape for n in compiled.report.nodes}
    total = 0
    for report in compiled.report.nodes:
        node = compiled.graph.node(report.name)
        if report.train_only or node.op not in ("conv", "dense"):
            continue
        if node.op == "dense":
            total += shapes[node.inputs[0]][2] * report.output_shape[2]
            continue
        attrs, source = node.attrs, shapes[node.inputs[0]]
        kernel, stride, dilation = (
            pair(attrs["kernel"]),
            pair(attrs["stride"]),
            pair(attrs["dilation"]),
        )
        pads = resolve_padding(attrs["padding"], source, kernel, stride, dilation)
        taps = [
            valid_taps(
                source[a], kernel[a], stride[a], pads[a], dilation[a], report.output_shape[a]
            )
            for a in (0, 1)
        ]
        total += taps[0] * taps[1] * source[2] // attrs["groups"] * attrs["filters"]
    return total


@pytest.mark.parametrize("name", ZOO)
def test_xla_flops_agree_with_the_analysis(name):
    compiled = netspec.compile(SPECS / f"{name}.yaml")
    network = compiled.network_class()
    graphdef, state = nnx.split(nnx.eval_shape(lambda: network(rngs=nnx.Rngs(0))))
    x = jax.ShapeDtypeStruct((1, *compiled.graph.input_shape), jnp.float32)
    lowered = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x)
    flops = lowered.cost_analysis()["flops"]
    real = multiply_adds_on_real_inputs(compiled)
    padding_taps = compiled.report.macs - real
    assert 0 <= padding_taps < 0.25 * compiled.report.macs  # small maps: more border
    # Convolutions and matmuls are 2 FLOPs per multiply-add; biases, activations, pooling and
    # normalisation add a few percent on top (5.4% in mobilenet_v2, whose depthwise layers do
    # few multiply-adds per activation).
    assert 2 * real <= flops <= 1.08 * 2 * real


def load_module(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ZOO)
def test_ejected_source_reproduces_the_built_module(name, tmp_path):
    compiled, model = built(name)
    source = compiled.source(standalone=True)
    assert "netspec" not in "".join(
        line for line in source.splitlines() if line.startswith(("import", "from"))
    )
    path = tmp_path / f"{name}_ejected.py"
    path.write_text(source)
    module = load_module(path, f"ejected_{name}")
    network = getattr(module, compiled.generated.network)
    ejected = nnx.eval_shape(lambda: network(rngs=nnx.Rngs(1)))
    assert nnx.graphdef(ejected) is not None
    nnx.update(ejected, nnx.state(model))
    x = batch(compiled, seed=3)
    ours = quick_jit(lambda m, x: m(x))(model, x)
    theirs = quick_jit(lambda m, x: m(x))(ejected, x)
    np.testing.assert_allclose(np.asarray(theirs), np.asarray(ours), rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(nnx.state(ejected)) == jax.tree.structure(nnx.state(model))


def test_ejected_source_is_readable_flax():
    source = netspec.compile(SPECS / "googlenet.yaml").source(standalone=True)
    assert "class Inception(nnx.Module):" in source
    assert "class AuxClassifier(nnx.Module):" in source
    # The table's rows appear in order, each with the spec line and its inferred size.
    rows = [
        "self.conv1 =",
        "self.pool1 =",
        "self.inception_3a =",
        "self.aux1 =",
        "self.inception_4b =",
        "self.linear =",
    ]
    positions = [source.index(r) for r in rows]
    assert positions == sorted(positions)
    assert "# inception_4c: inception 128 128 256 24 64  64" in source
    assert "(paper: 463K)" in source
    call = source[source.index("def __call__(self, x, *, train") :]
    assert call.index("inception_3a = self.inception_3a(") < call.index("inception_3b =")


def test_dropout_draws_only_in_training_and_batch_norm_switches_statistics():
    compiled, model = built("inception10")
    x = batch(compiled)
    evaluate = nnx.jit(lambda m, x: m(x))
    np.testing.assert_array_equal(np.asarray(evaluate(model, x)), np.asarray(evaluate(model, x)))
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.BatchStat))
    nnx.jit(lambda m, x: m(x, train=True))(model, x)
    after = nnx.state(model, nnx.BatchStat)
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after))
    assert all(changed)  # training updates every running statistic
    compiled, lenet = built("alexnet")
    x = batch(compiled, size=1)
    train = nnx.jit(lambda m, x: m(x, train=True))
    assert not np.array_equal(np.asarray(train(lenet, x)), np.asarray(train(lenet, x)))


def test_mixed_precision_keeps_float32_parameters():
    compiled = netspec.compile(SPECS / "resnet18_cifar.yaml", dtype="bfloat16")
    model = compiled.build(seed=0)
    assert {v.dtype for v in flat_params(model).values()} == {jnp.dtype("float32")}
    x = batch(compiled)
    logits = nnx.jit(lambda m, x: m(x))(model, x)
    assert logits.dtype == jnp.bfloat16
    reference = netspec.compile(SPECS / "resnet18_cifar.yaml").build(seed=0)
    full = nnx.jit(lambda m, x: m(x))(reference, x)
    np.testing.assert_allclose(np.asarray(logits, np.float32), np.asarray(full), rtol=0.1, atol=0.1)


def test_dtype_from_the_spec(write_spec):
    path = write_spec(
        "name: t\ninput: [8, 8, 3]\ndtype: bfloat16\nlayers:\n  - c: conv 3x3 4\n  - g: gap\n"
    )
    model = netspec.compile(path).build()
    assert nnx.jit(lambda m, x: m(x))(model, jnp.ones((1, 8, 8, 3))).dtype == jnp.bfloat16


@pytest.mark.parametrize("layer", sorted(REGISTRY))
def test_every_layer_type_compiles_and_matches_the_analysis(layer, write_spec):
    """Each type's example row (docs/layers.md), as a one-row network, passes the checked
    compile and runs a training forward pass under jit with the analysed output shape."""
    layer_type = REGISTRY[layer]
    h, w, c = layer_type.example_input
    rows = [f"x: {layer_type.example}", "end: activation linear"]  # not a final softmax
    path = write_spec(
        f"name: t\ninput: [{h}, {w}, {c}]\nlayers:\n" + "".join(f"  - {r}\n" for r in rows)
    )
    compiled = netspec.compile(path)
    check = check_against_flax(compiled)
    assert check.layers == len(compiled.report.nodes)
    model = compiled.build()
    out = nnx.jit(lambda m, x: m(x, train=True))(model, jnp.ones((2, h, w, c)))
    shape = compiled.report.output_shape
    assert out.shape == ((2, shape[2]) if shape[:2] == (1, 1) else (2, *shape))


def test_check_reports_a_disagreement_at_the_row(write_spec, monkeypatch):
    from netspec.layers.base import Cost

    path = write_spec("name: t\ninput: [8, 8, 3]\nlayers:\n  - a: relu\n  - b: conv 3x3 4\n")
    conv = REGISTRY["conv"]
    wrong = conv.cost
    monkeypatch.setitem(
        REGISTRY,
        "conv",
        type(conv)(**{**conv.__dict__, "cost": lambda p, i, o: Cost(wrong(p, i, o).params + 1)}),
    )
    with pytest.raises(netspec.SpecError) as error:
        check_against_flax(netspec.compile(path))
    assert error.value.location.line == 5
    assert "has 112 parameters but the analysis counts 113" in str(error.value)


REPEATED_COMPOSITES = """\
name: rep
input: [8, 8, 4]
vars: {width: 4}
layers:
  - stack: [conv 3x3 $width same, relu]
    repeat: 2
  - res:
      add: [[conv 3x3 $width same], []]
    repeat: 2
  - gap: gap
"""


def test_repeated_inline_rows_build_and_eject(write_spec, tmp_path):
    """A repeated sequence or branch row becomes a class of its own in the generated code."""
    compiled = netspec.compile(write_spec(REPEATED_COMPOSITES))
    check = check_against_flax(compiled)
    assert check.params == 4 * (9 * 4 * 4 + 4) == compiled.report.params
    model = compiled.build(seed=0)
    assert {path[:2] for path in flat_params(model)} == {
        ("stack", 0),
        ("stack", 1),
        ("res", 0),
        ("res", 1),
    }
    path = tmp_path / "rep_ejected.py"
    path.write_text(compiled.source(standalone=True))
    network = getattr(load_module(path, "ejected_rep"), compiled.generated.network)
    ejected = nnx.eval_shape(lambda: network(rngs=nnx.Rngs(1)))
    nnx.update(ejected, nnx.state(model))
    x = jnp.ones((2, 8, 8, 4))
    np.testing.assert_allclose(np.asarray(ejected(x)), np.asarray(model(x)), rtol=1e-6)
