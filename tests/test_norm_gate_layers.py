"""Values of the norm, gate and regulariser layers against NumPy formulas written from their
definitions: the hard and smooth activations, layer norm, group norm, drop path, layer scale,
and multiply / add with broadcasting (1x1xC gates, HxWx1 masks)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import netspec
from netspec import SpecError, analyze_spec
from netspec import flax_layers as fl
from netspec.check import check_against_flax
from netspec.shapes import ShapeError, add_shape, broadcast_shape, multiply_shape

jax.config.update("jax_numpy_rank_promotion", "raise")  # broadcasting must be explicit


def randn(*shape: int, seed: int = 0, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """Normal float32 test data."""
    gen = np.random.default_rng(seed)
    return (gen.standard_normal(shape) * scale + shift).astype(np.float32)


def kw(seed: int = 0) -> dict:
    return {"dtype": None, "param_dtype": jnp.float32, "rngs": nnx.Rngs(seed)}


def randomise(layer: nnx.Module, seed: int = 1) -> nnx.Module:
    """Give every parameter normal values (so gamma and beta are not 1 and 0); returns it."""
    gen = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda v: jnp.asarray(gen.standard_normal(v.shape).astype(np.float32)),
        nnx.state(layer, nnx.Param),
    )
    nnx.update(layer, params)
    return layer


def param(layer: nnx.Module, name: str) -> np.ndarray:
    return np.asarray(getattr(layer, name)[...], np.float64)


def one_layer(row: str, size: tuple[int, int, int]) -> str:
    h, w, c = size
    return f"name: t\ninput: [{h}, {w}, {c}]\nlayers:\n  - x: {row}\n"


# ----------------------------------------------------------------------------- activations


def np_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def np_hardsigmoid(x: np.ndarray) -> np.ndarray:
    """PyTorch's Hardsigmoid: relu6(x + 3) / 6."""
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


NP_ACTIVATIONS = {
    "hardsigmoid": np_hardsigmoid,
    "hardswish": lambda x: x * np_hardsigmoid(x),  # PyTorch's Hardswish: x * relu6(x + 3) / 6
    "mish": lambda x: x * np.tanh(np_softplus(x)),
    "gelu_tanh": lambda x: (
        0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ),
}


@pytest.mark.parametrize("fn", sorted(NP_ACTIVATIONS))
def test_new_activations_match_their_definitions(fn: str) -> None:
    x = randn(2, 3, 4, 5, scale=4.0)
    x[0, 0, 0, :5] = [-3.0, 3.0, 0.0, -20.0, 20.0]  # the hard functions' corners, saturation
    layer = fl.Activation((3, 4, 5), fn, **kw())
    y = layer(jnp.asarray(x))
    assert layer.out_shape == y.shape[1:]
    expected = NP_ACTIVATIONS[fn](x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_hard_activations_at_known_points() -> None:
    x = jnp.asarray([-4.0, -3.0, 0.0, 1.5, 3.0, 4.0])
    np.testing.assert_allclose(
        np.asarray(fl.activate(x, "hardsigmoid")), [0, 0, 0.5, 0.75, 1, 1], atol=1e-7
    )
    np.testing.assert_allclose(
        np.asarray(fl.activate(x, "hardswish")), [0, 0, 0, 1.125, 3, 4], atol=1e-7
    )


def test_gelu_stays_exact_and_gelu_tanh_is_the_approximation() -> None:
    x = jnp.asarray(np.linspace(-4, 4, 81, dtype=np.float32))
    exact = 0.5 * np.asarray(x, np.float64) * (1 + np.vectorize(math.erf)(np.asarray(x) / 2**0.5))
    np.testing.assert_allclose(np.asarray(fl.activate(x, "gelu")), exact, rtol=1e-5, atol=1e-6)
    gap = np.abs(np.asarray(fl.activate(x, "gelu_tanh")) - exact).max()
    assert 1e-5 < gap < 1e-3  # a different function, but close


@pytest.mark.parametrize("fn", sorted(NP_ACTIVATIONS))
def test_new_activations_are_row_types_and_conv_activations(fn: str) -> None:
    shortcut, on_conv = (
        analyze_spec(one_layer(fn, (4, 4, 3))).rows,
        analyze_spec(one_layer(f"conv 1x1 4 {fn}", (4, 4, 3))).rows,
    )
    assert shortcut[0].output_shape == (4, 4, 3) and shortcut[0].params == 0
    assert on_conv[0].params == 16 and on_conv[0].macs == 4 * 4 * 3 * 4
    conv = fl.Conv((4, 4, 3), 4, 1, activation=fn, **kw())
    x = randn(2, 4, 4, 3, seed=3)
    pre = np.einsum("bhwc,cf->bhwf", x, param(conv, "kernel")[0, 0]) + param(conv, "bias")
    np.testing.assert_allclose(
        np.asarray(conv(jnp.asarray(x))), NP_ACTIVATIONS[fn](pre), rtol=1e-4, atol=1e-5
    )


# ----------------------------------------------------------------------------- layer norm


def np_layernorm(x: np.ndarray, eps: float, gamma=None, beta=None) -> np.ndarray:
    """Normalise over the last (channel) axis only, per example and pixel; biased variance."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if gamma is None else gamma) + (0 if beta is None else beta)


def test_layernorm_normalises_each_pixel_over_channels() -> None:
    x = randn(2, 3, 4, 6, seed=4, scale=3.0, shift=5.0)  # an offset mean tests the centring
    layer = randomise(fl.LayerNorm((3, 4, 6), **kw()))
    y = np.asarray(layer(jnp.asarray(x), train=True))
    assert layer.out_shape == y.shape[1:] and layer.epsilon == 1e-6
    expected = np_layernorm(x, 1e-6, param(layer, "scale"), param(layer, "bias"))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(y, np.asarray(layer(jnp.asarray(x), train=False)))
    # pixels do not mix: changing one pixel changes only its own output
    x2 = x.copy()
    x2[0, 1, 2] += 10.0
    y2 = np.asarray(layer(jnp.asarray(x2)))
    changed = np.argwhere((y2 != y).any(axis=-1))
    assert changed.tolist() == [[0, 1, 2]]


def test_layernorm_on_a_flat_input_is_ordinary_layernorm() -> None:
    x = randn(3, 1, 1, 10, seed=5, scale=2.0, shift=-1.0)
    layer = fl.LayerNorm((1, 1, 10), eps=1e-5, scale=False, center=False, **kw())
    flat = x.reshape(3, 10).astype(np.float64)
    z = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))).reshape(3, 10), z, atol=1e-5)
    assert not nnx.state(layer, nnx.Param)


def test_layernorm_and_groupnorm_costs() -> None:
    for row, params in [
        ("layernorm", 2 * 24),
        ("ln scale=false", 24),
        ("layer_norm center=false scale=false", 0),
        ("groupnorm 8", 2 * 24),
        ("gn 3 scale=false", 24),
        ("group_norm 24 eps=1e-6", 2 * 24),
    ]:
        (row_report,) = analyze_spec(one_layer(row, (5, 5, 24))).rows
        assert (row_report.params, row_report.state, row_report.macs) == (params, 0, 0), row
        assert row_report.output_shape == (5, 5, 24)


# ----------------------------------------------------------------------------- group norm


def np_groupnorm(x: np.ndarray, groups: int, eps: float, gamma=None, beta=None) -> np.ndarray:
    """Per example and group: mean and biased variance over (H, W, C / groups)."""
    b, h, w, c = x.shape
    g = x.astype(np.float64).reshape(b, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = ((g - mean) ** 2).mean(axis=(1, 2, 4), keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(b, h, w, c)
    return y * (1 if gamma is None else gamma) + (0 if beta is None else beta)


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_groupnorm_matches_the_definition(groups: int) -> None:
    x = randn(2, 3, 5, 6, seed=6, scale=2.0, shift=3.0)
    layer = randomise(fl.GroupNorm((3, 5, 6), groups, **kw()))
    y = np.asarray(layer(jnp.asarray(x), train=True))
    assert layer.out_shape == y.shape[1:] and layer.epsilon == 1e-5
    expected = np_groupnorm(x, groups, 1e-5, param(layer, "scale"), param(layer, "bias"))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    # examples do not mix
    x2 = x.copy()
    x2[1] *= 3.0
    np.testing.assert_array_equal(np.asarray(layer(jnp.asarray(x2)))[0], y[0])


def test_groupnorm_refuses_channels_that_do_not_split() -> None:
    with pytest.raises(ShapeError, match="12 channels do not split into 5 groups") as error:
        fl.GroupNorm((4, 4, 12), 5, **kw())
    assert error.value.hint == "12 channels split into 1, 2, 3, 4, 6 or 12 groups"
    assert error.value.field == "groups"
    with pytest.raises(SpecError, match="do not split into 32 groups") as spec_error:
        analyze_spec(one_layer("groupnorm", (4, 4, 48)))  # the default: 32 groups
    assert "1, 2, 3, 4, 6, 8, 12, 16, 24 or 48" in str(spec_error.value)


# ----------------------------------------------------------------------------- drop path


def test_drop_path_eval_is_identity() -> None:
    layer = fl.DropPath((4, 4, 3), 0.5, **kw())
    x = jnp.asarray(randn(8, 4, 4, 3, seed=7))
    y = layer(x)
    assert layer.out_shape == y.shape[1:]
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(layer(x, train=False)), np.asarray(x))


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.6])
def test_drop_path_zeroes_whole_examples_and_scales_the_rest(rate: float) -> None:
    layer = fl.DropPath((2, 3, 4), rate, rngs=nnx.Rngs(dropout=11))
    x = randn(4000, 2, 3, 4, seed=8) + 10.0  # no zero inputs: a zero output means dropped
    y = np.asarray(layer(jnp.asarray(x), train=True), np.float64)
    dropped = (y == 0).all(axis=(1, 2, 3))
    kept = ~dropped
    assert not ((y == 0).any(axis=(1, 2, 3)) & kept).any()  # all zero or none
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
    # 4000 draws: the kept fraction's standard deviation is at most 0.008
    assert abs(kept.mean() - (1 - rate)) < 0.04
    assert (np.asarray(layer(jnp.asarray(x), train=True)) != y).any()  # a new mask each call


def test_drop_path_uses_the_dropout_stream() -> None:
    """Same stream and key handling as Dropout: with the same Rngs, DropPath's per-example mask
    is Dropout's mask broadcast over height, width and channels."""
    x = jnp.ones((64, 2, 2, 3))
    path = fl.DropPath((2, 2, 3), 0.5, rngs=nnx.Rngs(dropout=3, default=99))
    drop = nnx.Dropout(0.5, broadcast_dims=(1, 2, 3), rngs=nnx.Rngs(dropout=3, default=99))
    np.testing.assert_array_equal(
        np.asarray(path(x, train=True)), np.asarray(drop(x, deterministic=False))
    )
    assert fl.DropPath((1, 1, 4), 0.0)(jnp.ones((2, 1, 1, 4)), train=True).shape == (2, 1, 1, 4)
    with pytest.raises(ValueError, match="rngs"):
        fl.DropPath((1, 1, 4), 0.5)


def test_drop_path_advances_under_jit() -> None:
    layer = fl.DropPath((1, 1, 2), 0.5, **kw())
    step = nnx.jit(lambda m, x: m(x, train=True))
    x = jnp.ones((32, 1, 1, 2))
    first, second = np.asarray(step(layer, x)), np.asarray(step(layer, x))
    assert (first != second).any()
    assert set(np.unique(first)) <= {0.0, 2.0}


def test_drop_path_row_in_a_spec_trains_and_costs_nothing() -> None:
    (row,) = analyze_spec(one_layer("stochastic_depth 0.2", (4, 4, 8))).rows
    assert (row.output_shape, row.params, row.state, row.macs) == ((4, 4, 8), 0, 0, 0)
    with pytest.raises(SpecError, match="rate"):
        analyze_spec(one_layer("drop_path 1.0", (4, 4, 8)))


# ----------------------------------------------------------------------------- layer scale


def test_layer_scale_starts_at_init_and_multiplies_per_channel() -> None:
    layer = fl.LayerScale((3, 3, 5), **kw())
    np.testing.assert_array_equal(param(layer, "gamma"), np.full(5, np.float32(1e-6)))
    x = randn(2, 3, 3, 5, seed=9)
    np.testing.assert_allclose(np.asarray(layer(jnp.asarray(x))), x * np.float32(1e-6), rtol=1e-6)

    randomise(layer, seed=10)
    gamma = param(layer, "gamma")
    np.testing.assert_allclose(
        np.asarray(layer(jnp.asarray(x), train=True)), x * gamma.reshape(1, 1, 1, 5), rtol=1e-6
    )
    assert fl.LayerScale((1, 1, 3), 0.5)(jnp.ones((1, 1, 1, 3))).tolist() == [[[[0.5] * 3]]]


def test_layer_scale_cost_and_dtype() -> None:
    (row,) = analyze_spec(one_layer("layer_scale 0.1", (4, 4, 8))).rows
    assert (row.params, row.state, row.macs) == (8, 0, 0)
    bf16 = fl.LayerScale((2, 2, 3), 0.5, dtype=jnp.bfloat16, param_dtype=jnp.float32)
    y = bf16(jnp.ones((1, 2, 2, 3)))
    assert y.dtype == jnp.bfloat16 and bf16.gamma[...].dtype == jnp.float32


# ----------------------------------------------------------------------------- multiply, add


BROADCAST_CASES = [
    # input shapes (without the batch), in order; the output is the full one
    [(4, 5, 6), (4, 5, 6)],
    [(4, 5, 6), (1, 1, 6)],
    [(1, 1, 6), (4, 5, 6)],
    [(4, 5, 6), (4, 5, 1)],
    [(4, 5, 1), (1, 1, 6), (4, 5, 6)],
    [(1, 1, 6), (1, 1, 6)],
    [(4, 5, 1), (4, 5, 1), (4, 5, 1)],
]


@pytest.mark.parametrize("shapes", BROADCAST_CASES)
@pytest.mark.parametrize("op", ["multiply", "add"])
def test_multiply_and_add_broadcast_like_numpy(op: str, shapes: list) -> None:
    xs = [randn(2, *s, seed=12 + i) for i, s in enumerate(shapes)]
    cls, rule, combine = {
        "multiply": (fl.Multiply, multiply_shape, np.multiply),
        "add": (fl.Add, add_shape, np.add),
    }[op]
    layer = cls(shapes, **kw())
    y = np.asarray(layer([jnp.asarray(x) for x in xs]))
    expected = xs[0].astype(np.float64)
    for x in xs[1:]:
        expected = combine(expected, x)  # NumPy broadcasting: 1x1xC over H and W
    assert layer.out_shape == rule(*shapes) == expected.shape[1:] == y.shape[1:]
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("shapes", "hint"),
    [
        ([(8, 8, 32), (8, 8, 16)], "project the shortcut with a 1x1 conv"),
        ([(8, 8, 32), (4, 4, 32)], "give the shortcut the same stride"),
        ([(8, 8, 32), (4, 4, 16)], "same stride and a 1x1 conv to 32 channels"),
        ([(8, 8, 32), (1, 1, 16)], "a 1x1xC gate must have the channels of the input it scales"),
        ([(1, 1, 16), (8, 8, 32)], "(32, not 16)"),
        ([(8, 8, 32), (4, 4, 1)], "give the shortcut the same stride"),
        ([(1, 1, 32), (8, 8, 1)], "no input has the full shape 8x8x32"),
        ([(1, 1, 16), (1, 1, 32)], "project the shortcut with a 1x1 conv"),
    ],
)
@pytest.mark.parametrize("op", ["multiply", "add"])
def test_broadcast_refuses_other_mismatches_with_a_fitting_hint(
    op: str, shapes: list, hint: str
) -> None:
    listed = ", ".join("x".join(map(str, s)) for s in shapes)
    with pytest.raises(ShapeError, match=f"^{op} needs equal shapes") as error:
        broadcast_shape(op, *shapes)
    assert listed in str(error.value)
    assert hint in (error.value.hint or "")
    cls = fl.Multiply if op == "multiply" else fl.Add
    with pytest.raises(ShapeError, match=f"^{op} needs equal shapes"):
        cls(shapes)


def test_add_of_a_gate_no_longer_asks_for_a_stride() -> None:
    """112x112x32 + 1x1x32 used to fail with "give the shortcut the same stride"."""
    assert add_shape((112, 112, 32), (1, 1, 32)) == (112, 112, 32)
    text = one_layer("conv 1x1 32", (112, 112, 3)) + (
        "  - p: global_avgpool\n  - s: add from=[x, p]\n  - m: mul from=[p, s]\n"
    )
    rows = analyze_spec(text).rows
    assert [r.output_shape for r in rows][-2:] == [(112, 112, 32), (112, 112, 32)]
    assert [(r.params, r.macs) for r in rows][-2:] == [(0, 0), (0, 0)]


SE_SPEC = """
name: se
input: [4, 5, 3]
layers:
  - c: conv 1x1 8
  - p: global_avgpool
  - f: conv 1x1 8
  - g: hardsigmoid
  - m: multiply from=[c, g]
"""


def test_squeeze_excitation_spec_compiles_and_matches_numpy() -> None:
    compiled = netspec.compile(SE_SPEC)
    assert check_against_flax(compiled).layers == len(compiled.report.nodes) == 5
    report = {r.name: r for r in compiled.report.rows}
    assert report["m"].output_shape == (4, 5, 8) and report["m"].macs == 0
    model = compiled.build(seed=0)
    randomise(model, seed=13)
    x = randn(2, 4, 5, 3, seed=14)
    c = np.einsum("bhwi,io->bhwo", x, param(model.c, "kernel")[0, 0]) + param(model.c, "bias")
    squeezed = c.mean(axis=(1, 2), keepdims=True)
    f = np.einsum("bhwi,io->bhwo", squeezed, param(model.f, "kernel")[0, 0])
    gate = np_hardsigmoid(f + param(model.f, "bias"))
    assert gate.shape == (2, 1, 1, 8)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), c * gate, rtol=1e-4, atol=1e-5)


def test_composite_add_whose_first_branch_is_a_gate() -> None:
    """An `add:` block whose first branch is 1x1xC: the generated code's shape is the sum's."""
    text = """
name: t
input: [6, 6, 4]
layers:
  - s:
      add:
        - [global_avgpool, conv 1x1 4]
        - []
  - f: flatten
"""
    compiled = netspec.compile(text)
    assert compiled.report.rows[-1].output_shape == (1, 1, 6 * 6 * 4)
    assert check_against_flax(compiled).params == 4 * 4 + 4  # shapes agree, or it raises
    x = randn(2, 6, 6, 4, seed=15)
    model = compiled.build(seed=0)
    gate = np.asarray(model.s.b0.conv(model.s.b0.global_avgpool(jnp.asarray(x))))
    np.testing.assert_allclose(
        np.asarray(model(jnp.asarray(x))), (gate + x).reshape(2, -1), rtol=1e-5, atol=1e-6
    )


def test_bfloat16_compute_with_float32_params() -> None:
    bf16 = {"dtype": jnp.bfloat16, "param_dtype": jnp.float32, "rngs": nnx.Rngs(0)}
    layers = [
        fl.LayerNorm((3, 3, 8), **bf16),
        fl.GroupNorm((3, 3, 8), 4, **bf16),
        fl.LayerScale((3, 3, 8), 0.5, **bf16),
        fl.DropPath((3, 3, 8), 0.2, **bf16),
        fl.Activation((3, 3, 8), "hardswish", **bf16),
    ]
    x = jnp.asarray(randn(4, 3, 3, 8, seed=16, shift=2.0), jnp.bfloat16)
    for layer in layers:
        y = layer(x, train=True)
        assert y.dtype == jnp.bfloat16 and y.shape == x.shape
        assert np.isfinite(np.asarray(y, np.float32)).all()
    ln = np.asarray(layers[0](x), np.float64)
    np.testing.assert_allclose(ln, np_layernorm(np.asarray(x, np.float64), 1e-6), atol=0.05)
    params = nnx.to_flat_state(nnx.state(layers[:3], nnx.Param))
    assert params and all(v[...].dtype == jnp.float32 for _, v in params)
