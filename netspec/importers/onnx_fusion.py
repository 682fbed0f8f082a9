"""Activations that ONNX files spell out in several nodes, recognised by what they compute.

Exporters write GELU before opset 20 as `x * 0.5 * (1 + Erf(x / sqrt 2))`, its tanh form with
Pow/Tanh, Mish as `x * Tanh(Softplus(x))`, hard-swish as `x * Clip(x + 3, 0, 6) / 6`, in
whatever order of Mul and Div they like. Rather than one pattern per exporter, this finds every
subgraph of element-wise nodes with one non-constant input x (constants scalar) whose inner
results nothing else reads, evaluates it on probe values of x in NumPy, and names it when it
equals one of netspec's activations there. Largest subgraphs first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

ELEMENTWISE = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Softplus",
    "Exp",
    "Log",
    "Neg",
    "Sqrt",
    "Relu",
    "Clip",
    "Min",
    "Max",
    "Abs",
    "Reciprocal",
    "HardSigmoid",
}
PROBE = np.linspace(-6.0, 6.0, 121)
_erf = np.vectorize(math.erf)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "silu": lambda x: x * _sigmoid(x),
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "hardsigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "softplus": _softplus,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}
"""netspec's activations, as its docs define them (docs/layers.md)."""


def _evaluate(op: str, args: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    a = args[0]
    b = args[1] if len(args) > 1 else None
    with np.errstate(all="ignore"):
        simple = {
            "Erf": _erf,
            "Tanh": np.tanh,
            "Sigmoid": _sigmoid,
            "Softplus": _softplus,
            "Exp": np.exp,
            "Log": np.log,
            "Neg": np.negative,
            "Sqrt": np.sqrt,
            "Relu": lambda v: np.maximum(v, 0.0),
            "Abs": np.abs,
            "Reciprocal": lambda v: 1.0 / v,
        }
        if op in simple:
            return simple[op](a)
        if op == "HardSigmoid":
            return np.clip(attrs.get("alpha", 0.2) * a + attrs.get("beta", 0.5), 0.0, 1.0)
        if op == "Clip":
            low = args[1] if len(args) > 1 and args[1] is not None else -np.inf
            high = args[2] if len(args) > 2 and args[2] is not None else np.inf
            return np.clip(a, low, high)
        binary = {
            "Add": np.add,
            "Sub": np.subtract,
            "Mul": np.multiply,
            "Div": np.divide,
            "Pow": np.power,
            "Min": np.minimum,
            "Max": np.maximum,
        }
        return binary[op](a, b)


def fuse(
    nodes: list[Any],
    constant: Callable[[str], np.ndarray | None],
    attrs: Callable[[Any], dict[str, Any]],
    outputs: set[str],
) -> dict[int, tuple[str, str, set[int]]]:
    """id of the last node of each recognised activation -> (netspec op, its input x, ids of
    the nodes it replaces, itself included)."""
    producer = {out: node for node in nodes for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    leaf: dict[str, str | None] = {}

    def leaf_of(tensor: str) -> str | None:
        """The one non-constant tensor the element-wise subgraph computing `tensor` reads."""
        if tensor in leaf:
            return leaf[tensor]
        node = producer.get(tensor)
        if node is None or node.op_type not in ELEMENTWISE:
            leaf[tensor] = tensor
            return tensor
        found = {leaf_of(i) for i in node.input if i and constant(i) is None}
        leaf[tensor] = found.pop() if len(found) == 1 else None
        return leaf[tensor]

    fused: dict[int, tuple[str, str, set[int]]] = {}
    taken: set[int] = set()
    for final in reversed(nodes):
        if id(final) in taken or final.op_type not in ELEMENTWISE or not final.output:
            continue
        deepest = leaf_of(final.output[0])
        if deepest is None or deepest == final.output[0]:
            continue
        widest = _subgraph(final, deepest, producer, constant)
        if widest is None:
            continue
        # x may be any tensor inside (gelu(relu(z)): x is relu's output), the widest first
        order = {id(n): i for i, n in enumerate(nodes)}
        inner = [n.output[0] for n in sorted(widest, key=lambda n: order[id(n)]) if n is not final]
        for x in [deepest, *inner]:
            inside = _subgraph(final, x, producer, constant)
            if inside is None or len(inside) < 2 or any(id(n) in taken for n in inside):
                continue
            ids = {id(n) for n in inside}
            if not _exclusive(inside, final, readers, outputs, ids):
                continue
            op = _recognise(final, x, producer, constant, attrs)
            if op is not None:
                fused[id(final)] = (op, x, ids)
                taken |= ids
                break
    return fused


def _subgraph(
    final: Any, x: str, producer: dict[str, Any], constant: Callable[[str], Any]
) -> list[Any] | None:
    """The element-wise nodes between `x` and `final` (None if a constant is not a scalar)."""
    found: dict[int, Any] = {}
    stack = [final]
    while stack:
        node = stack.pop()
        if id(node) in found:
            continue
        found[id(node)] = node
        for name in node.input:
            if not name or name == x:
                continue
            value = constant(name)
            if value is not None:
                if np.size(value) != 1:
                    return None
                continue
            source = producer.get(name)
            if source is None or source.op_type not in ELEMENTWISE:
                return None  # another input than x
            stack.append(source)
    return list(found.values())


def _exclusive(
    inside: list[Any], final: Any, readers: dict[str, list[Any]], outputs: set[str], ids: set[int]
) -> bool:
    for node in inside:
        if node is final:
            continue
        for out in node.output:
            if out in outputs or any(id(r) not in ids for r in readers.get(out, [])):
                return False
    return True


def _recognise(
    final: Any,
    x: str,
    producer: dict[str, Any],
    constant: Callable[[str], Any],
    attrs: Callable[[Any], dict[str, Any]],
) -> str | None:
    values: dict[str, np.ndarray] = {x: PROBE}

    def value(name: str) -> np.ndarray:
        if name in values:
            return values[name]
        fixed = constant(name)
        if fixed is not None:
            return np.asarray(fixed, np.float64).reshape(())
        node = producer[name]
        args = [value(i) if i else None for i in node.input]
        values[name] = _evaluate(node.op_type, args, attrs(node))
        return values[name]

    result = value(final.output[0])
    if np.shape(result) != PROBE.shape or not np.all(np.isfinite(result)):
        return None
    for op, function in ACTIVATIONS.items():
        expected = function(PROBE)
        if np.allclose(result, expected, rtol=1e-5, atol=1e-6):
            return op
    return None
