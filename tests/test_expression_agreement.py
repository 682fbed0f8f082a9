"""The evaluator (the analysis) and the generated code (Python) read every `${...}` alike:
random expressions over the whitelisted grammar, evaluated by netspec and by Python running
the emitter's translation, give the same value of the same type (or netspec refuses them)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.emit import Generator, Scope
from netspec.expr import ROW_INPUT, ExprError, check_expression, evaluate
from netspec.tree import Defaults

VARIABLES = {"a": 7, "b": -3, "c": 2.5, "xs": [4, 1, 9], "t": True, "s": "ab"}
ROW_INPUT_SHAPE = (12, 10, 24)
"""The shape `in.h`, `in.w` and `in.c` read: a list for the evaluator, the generated code's
`shape` tuple for Python."""

ROW_INPUT_ATOMS = ("in.h", "in.w", "in.c")
atoms = st.sampled_from(
    ["a", "b", "c", "xs", "t", "s", "0", "1", "2", "-4", "0.5", "true", "none", *ROW_INPUT_ATOMS]
)


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        children,
        st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "==", "and", "or"]),
        children,
    ).map(lambda p: f"({p[0]} {p[1]} {p[2]})")
    unary = st.tuples(st.sampled_from(["-", "not "]), children).map(lambda p: f"({p[0]}{p[1]})")
    call = st.tuples(
        st.sampled_from(["abs", "ceil", "floor", "int", "float", "len", "round"]), children
    ).map(lambda p: f"{p[0]}({p[1]})")
    pair = st.tuples(st.sampled_from(["max", "min"]), children, children).map(
        lambda p: f"{p[0]}({p[1]}, {p[2]})"
    )
    choice = st.tuples(children, children, children).map(
        lambda p: f"({p[0]} if {p[1]} else {p[2]})"
    )
    index = st.tuples(children).map(lambda p: f"xs[{p[0]}]")
    return st.one_of(binary, unary, call, pair, choice, index)


expressions = st.recursive(atoms, combine, max_leaves=6)


def python_value(expression: str) -> object:
    """What the generated code computes: the emitter's translation run by Python."""
    generator = Generator.__new__(Generator)
    generator.translations = {}
    names = {name: name for name in VARIABLES}
    source = generator.translate_expression(
        check_expression(expression, [*VARIABLES, ROW_INPUT]),
        Scope(names, (Defaults(),), row_input="shape"),
    )
    namespace = {**VARIABLES, "shape": ROW_INPUT_SHAPE}
    return eval(source, {"math": math, "__builtins__": __builtins__}, namespace)


@settings(max_examples=400, deadline=None)
@given(expressions)
def test_evaluator_and_generated_code_agree(expression: str) -> None:
    try:
        expected = evaluate(expression, {**VARIABLES, ROW_INPUT: list(ROW_INPUT_SHAPE)})
    except ExprError:
        return  # refused by netspec: no model is built from it
    actual = python_value(expression)
    assert type(actual) is type(expected), (expression, expected, actual)
    assert actual == expected or (actual != actual and expected != expected), (
        expression,
        expected,
        actual,
    )
