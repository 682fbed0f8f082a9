"""The layer registry against its Flax modules, its docs and its schema, one test per layer type.

Adding a layer type (a module in netspec/layers/ and a `@flax_module` class in
netspec/flax_layers.py) needs no edit here: every test is parametrized over the registry.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import jax.numpy as jnp
import pytest
from flax import nnx

import netspec
from netspec import flax_layers as fl
from netspec.check import check_against_flax
from netspec.docs import LAYERS_MD, example_spec, render_layers
from netspec.layers import ALIASES, REGISTRY, LayerType
from netspec.layers.base import flax_class_names, register
from netspec.shapes import ShapeError
from netspec.spec import json_schema

from .conftest import ROOT

BASE_TYPES = sorted(name for name, layer in REGISTRY.items() if not layer.preset_of)
"""The types with a Flax module of their own (not shortcuts such as relu)."""


def count(module: nnx.Module, kind: type) -> int:
    return sum(int(v.size) for _, v in nnx.to_flat_state(nnx.state(module, kind)))


# ----------------------------------------------------------------------------- registration


def test_every_spec_layer_has_exactly_one_flax_module_and_vice_versa() -> None:
    assert set(fl.FLAX_MODULES) == set(BASE_TYPES)
    classes = list(fl.FLAX_MODULES.values())
    assert len(set(classes)) == len(classes), "one Flax class registered under two types"
    for name, layer in REGISTRY.items():
        cls = fl.FLAX_MODULES[layer.preset_of or name]
        assert getattr(fl, layer.flax_class) is cls  # the name generated code instantiates
    # flax_class is read from the decorators in the source (no JAX import): same map.
    assert flax_class_names() == {k: v.__name__ for k, v in fl.FLAX_MODULES.items()}


def test_shortcut_types_preset_fields_of_their_base_type() -> None:
    shortcuts = [layer for layer in REGISTRY.values() if layer.preset_of]
    assert shortcuts  # relu, tanh, ...
    for layer in shortcuts:
        base = REGISTRY[layer.preset_of]
        assert layer.params is base.params
        assert layer.presets and set(layer.presets) <= set(base.params.model_fields)


def test_every_layer_module_is_discovered_and_registers_a_type() -> None:
    files = {p.stem for p in (ROOT / "netspec" / "layers").glob("*.py")} - {"__init__", "base"}
    registering = {layer.params.__module__.rsplit(".", 1)[-1] for layer in REGISTRY.values()}
    assert files == registering


def example_type(name: str = "example_kind", **changes: object) -> LayerType:
    conv = REGISTRY["conv"]
    fields = {**conv.__dict__, "name": name, "aliases": (), "example": f"{name} 3x3 4"}
    return LayerType(**{**fields, **changes})


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (example_type("conv"), "its name 'conv' is already layer type 'conv'"),
        (example_type("bn"), "its name 'bn' is already an alias of 'batchnorm'"),
        (example_type(aliases=("dense",)), "its alias 'dense' is already layer type 'dense'"),
        (example_type(aliases=("fc",)), "its alias 'fc' is already an alias of 'dense'"),
        (example_type(aliases=("a", "a")), "lists an alias twice"),
        (example_type(example=""), "has no example row"),
        (example_type(preset_of="nothing"), "is a preset of 'nothing', which is not registered"),
    ],
)
def test_registration_refuses_clashes(layer: LayerType, message: str) -> None:
    before, aliases = dict(REGISTRY), dict(ALIASES)
    with pytest.raises(RuntimeError, match=message):
        register(layer)
    assert (before, aliases) == (REGISTRY, ALIASES)


def test_flax_registration_refuses_a_second_module() -> None:
    before = dict(fl.FLAX_MODULES)
    with pytest.raises(RuntimeError, match="two Flax modules for layer type 'conv'"):
        fl.flax_module("conv")(type("OtherConv", (), {}))
    assert before == fl.FLAX_MODULES


def test_a_type_without_a_flax_module_says_where_to_add_one() -> None:
    with pytest.raises(LookupError, match=r"@flax_module\('example_kind'\)"):
        _ = example_type().flax_class


def test_flax_class_needs_no_jax_import() -> None:
    code = (
        "import sys; from netspec.layers import REGISTRY;"
        "names = {layer.flax_class for layer in REGISTRY.values()};"
        "print('Conv' in names, 'jax' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "False"]


# ----------------------------------------------------------------------------- constructor contract


@pytest.mark.parametrize("name", BASE_TYPES)
def test_constructor_contract(name: str) -> None:
    """`Module(in_shape, <params fields, same defaults>, *, dtype, param_dtype, rngs)` and
    `__call__(x, train)`."""
    cls, layer = fl.FLAX_MODULES[name], REGISTRY[name]
    first, *rest = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert first.name == "in_shape"
    assert first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)
    assert first.default is first.empty
    assert not [p.name for p in rest if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    keyword_only = [p.name for p in rest if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == ["dtype", "param_dtype", "rngs"]
    fields = {p.name: p for p in rest if p.kind is p.POSITIONAL_OR_KEYWORD}
    assert list(fields) == list(layer.params.model_fields)
    for field, info in layer.params.model_fields.items():
        # generated code passes only the fields a row sets: the defaults must agree
        expected = inspect.Parameter.empty if info.is_required() else info.default
        assert fields[field].default == expected, field

    x, train = list(inspect.signature(cls.__call__).parameters.values())[1:]
    assert x.kind is x.POSITIONAL_OR_KEYWORD and x.default is x.empty
    assert (train.name, train.default) == ("train", False)


# ----------------------------------------------------------------------------- example rows


@pytest.mark.parametrize("name", list(REGISTRY))
def test_example_row_builds_what_the_analysis_says(name: str) -> None:
    """The example row's Flax module (built with nnx.Rngs(0)) has the analysis' output shape,
    parameter and statistic counts, and really outputs that shape."""
    layer = REGISTRY[name]
    graph = netspec.resolve_source(example_spec(layer))
    (node,) = graph.nodes
    assert node.op == name
    inputs = [graph.input_shape] * len(node.inputs)
    params = layer.params.model_validate(dict(node.attrs))
    shape = layer.output_shape(params, inputs)
    cost = layer.cost(params, inputs, shape)

    cls = fl.FLAX_MODULES[layer.preset_of or name]
    in_shape = inputs if layer.inputs[0] > 1 else inputs[0]
    module = cls(in_shape, **node.attrs, dtype=None, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    assert module.out_shape == shape
    assert (count(module, nnx.Param), count(module, nnx.BatchStat)) == (cost.params, cost.state)
    xs = [jnp.ones((2, *s)) for s in inputs]
    y = module(xs if layer.inputs[0] > 1 else xs[0], False)
    assert y.shape == (2, *shape)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_example_row_compiles_and_checks_against_flax(name: str) -> None:
    """Through the whole pipeline: generated code, abstract build, per-node comparison. (A
    last softmax is left to predict(), so a linear row ends the network.)"""
    compiled = netspec.compile(example_spec(REGISTRY[name]) + "  - end: activation linear\n")
    assert check_against_flax(compiled).layers == len(compiled.report.nodes) == 2


@pytest.mark.parametrize("name", BASE_TYPES)
def test_flax_module_refuses_what_the_analysis_refuses(name: str) -> None:
    """Where the shape rule refuses an input (too small, spatial for dense, ...), the Flax
    module raises the same ShapeError."""
    layer = REGISTRY[name]
    node = netspec.resolve_source(example_spec(layer)).nodes[0]
    params = layer.params.model_validate(dict(node.attrs))
    cls = fl.FLAX_MODULES[name]
    for bad in [(1, 1, 3), (2, 5, 3)] if layer.inputs[0] == 1 else [[(4, 4, 2), (3, 4, 2)]]:
        shapes = bad if isinstance(bad, list) else [bad]
        try:
            layer.output_shape(params, shapes)
        except ShapeError as error:
            with pytest.raises(ShapeError, match=f"^{re.escape(str(error))}$"):
                cls(bad, **node.attrs, dtype=None, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
        else:
            module = cls(bad, **node.attrs, dtype=None, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
            assert module.out_shape == layer.output_shape(params, shapes)


# ----------------------------------------------------------------------------- docs and schema


def test_docs_layers_md_is_generated_from_the_registry() -> None:
    text = render_layers()
    assert LAYERS_MD.read_text(encoding="utf-8") == text, (
        "docs/layers.md is out of date: run `python -m netspec.docs layers`"
    )
    for name, layer in REGISTRY.items():
        assert f"`{name}`" in text
        assert all(f"`{alias}`" in text for alias in layer.aliases)
        if not layer.preset_of:
            assert f"`{layer.example}`: " in text


def test_docs_example_column_shows_the_analysis() -> None:
    conv = REGISTRY["conv"]
    assert (conv.example, conv.example_input) == ("conv 3x3/2 32 same relu", (32, 32, 3))
    # 3x3x3 weights + 1 bias per filter; same padding, stride 2: ceil(32 / 2) = 16
    assert "`conv 3x3/2 32 same relu`: 32x32x3 → 16x16x32, 896 params" in render_layers()


def test_schema_is_built_from_the_registry() -> None:
    schema = json_schema()["$defs"]
    assert schema["LayerType"]["enum"] == sorted([*REGISTRY, *ALIASES])
    forms = {key.removeprefix("Layer."): form for key, form in schema.items() if "Layer." in key}
    assert set(forms) == set(REGISTRY)
    options = {"from", "repeat", "if", "aux", "expect"}
    for name, layer in REGISTRY.items():
        fields = set(layer.params.model_fields) - set(layer.presets)
        window = {"window"} if "window" in layer.positional else set()
        assert set(forms[name]["properties"]) == fields | {"type"} | options | window
