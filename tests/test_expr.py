"""Tests for netspec.expr: values are checked against Python's own arithmetic on literals,
and error offsets against positions counted by hand."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netspec.errors import Location, SpecError
from netspec.expr import ExprError, evaluate, references, resolve_variables, substitute

VARS = {"w": 64, "stride": 2, "xs": [10, 20, 30], "name": "res", "ratio": 0.25, "on": True}


def error_of(function, *args) -> ExprError:
    """The ExprError that `function(*args)` raises."""
    with pytest.raises(ExprError) as caught:
        function(*args)
    return caught.value


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 1 + 2 * 3),
        ("(1 + 2) * 3", (1 + 2) * 3),
        ("2 ** 3 ** 2", 2**3**2),
        ("-2 ** 2", -(2**2)),
        ("10 - 4 - 3", 10 - 4 - 3),
        ("7 // 2", 7 // 2),
        ("-7 // 2", -7 // 2),
        ("-7 % 3", -7 % 3),
        ("7.5 % 2", 7.5 % 2),
        ("+5", 5),
        ("2 ** -1", 0.5),
        ("1e3", 1000.0),
        ("1_000", 1000),
    ],
)
def test_arithmetic_matches_python(expression: str, expected: object) -> None:
    result = evaluate(expression, {})
    assert result == expected
    assert type(result) is type(expected)


def test_true_division_always_gives_float() -> None:
    assert evaluate("7 / 2", {}) == 3.5
    result = evaluate("8 / 2", {})
    assert result == 4.0 and type(result) is float


def test_variables_and_int_float_mixing() -> None:
    assert evaluate("w * 2", VARS) == 128
    assert type(evaluate("w * 2", VARS)) is int
    result = evaluate("w * ratio", VARS)
    assert result == 16.0 and type(result) is float


def test_strings_and_lists_concatenate_and_repeat() -> None:
    assert evaluate("'a' + \"b\"", {}) == "ab"
    assert evaluate("name * 2", VARS) == "resres"
    assert evaluate("[1, 2] + [3]", {}) == [1, 2, 3]
    assert evaluate("2 * [0]", {}) == [0, 0]


# ----------------------------------------------------------------------------- logic


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("w == 64", True),
        ("w != 64", False),
        ("w >= 64 and w <= 64", True),
        ("2 == 2.0", True),
        ("'a' < 'b'", True),
        ("w * 2 if w > 32 else w", 128),
        ("w * 2 if w > 100 else w", 64),
        ("not on", False),
        ("true", True),
        ("False", False),
        ("none", None),
        ("0 or 5", 5),
        ("3 and 0", 0),
        ("20 in xs", True),
        ("5 not in xs", True),
    ],
)
def test_comparisons_and_logic(expression: str, expected: object) -> None:
    assert evaluate(expression, VARS) == expected


def test_ternary_and_boolean_operators_short_circuit() -> None:
    assert evaluate("1 if true else missing", {}) == 1
    assert evaluate("false and missing", {}) is False
    assert evaluate("true or missing", {}) is True
    assert evaluate("1 > 2 > missing", {}) is False


# ----------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("max(xs)", 30),
        ("min([4.5, 2])", 2),
        ("abs(-3)", 3),
        ("round(2.6)", 3),
        ("round(2.5)", round(2.5)),
        ("round(3.14159, 2)", 3.14),
        ("int(7.9)", 7),
        ("int('12')", 12),
        ("float(3)", 3.0),
        ("ceil(7 / 2)", 4),
        ("floor(7 / 2)", 3),
        ("floor(-0.5)", -1),
        ("ceil(w / 3)", math.ceil(64 / 3)),
        ("len(xs)", 3),
        ("len(name)", 3),
    ],
)
def test_functions(expression: str, expected: object) -> None:
    result = evaluate(expression, VARS)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("max()", "at least 1"),
        ("abs(1, 2)", "takes 1"),
        ("abs('x')", "expects a number"),
        ("len(3)", "expects a list or string"),
        ("int('abc')", "cannot convert"),
        ("max(1, 'a')", "cannot compare"),
    ],
)
def test_bad_function_arguments(expression: str, words: str) -> None:
    assert words in error_of(evaluate, expression, {}).message


# ----------------------------------------------------------------------------- lists


def test_lists_and_indexing() -> None:
    assert evaluate("[1, w, 'x']", VARS) == [1, 64, "x"]
    assert evaluate("xs[0] + xs[-1]", VARS) == 10 + 30
    assert evaluate("[[1, 2], [3]][0][1]", {}) == 2


def test_index_errors() -> None:
    error = error_of(evaluate, "xs[3]", VARS)
    assert "out of range" in error.message and error.offset == 3
    assert "int" in error_of(evaluate, "xs['a']", VARS).message
    assert "only lists" in error_of(evaluate, "name[0]", VARS).message
    assert "only lists" in error_of(evaluate, "w[0]", VARS).message


# ----------------------------------------------------------------------------- substitute


def test_whole_reference_keeps_its_type() -> None:
    assert substitute("${w}", VARS) == 64
    assert substitute("  ${ w * 2 }  ", VARS) == 128
    assert substitute("$stride", VARS) == 2
    assert substitute("${on}", VARS) is True
    assert substitute("${xs}", VARS) == [10, 20, 30]
    assert substitute("${w / 2}", VARS) == 32.0
    assert type(substitute("${w / 2}", VARS)) is float


def test_interpolation() -> None:
    assert substitute("conv 3x3/$stride ${w*2}", VARS) == "conv 3x3/2 128"
    assert substitute("${w}${w}", VARS) == "6464"
    assert substitute("r=${ratio} ${on} ${not on}", VARS) == "r=0.25 true false"
    assert substitute("${w / 2}px", VARS) == "32.0px"
    assert substitute("$name.x", VARS) == "res.x"
    assert substitute("$name-$w", VARS) == "res-64"
    assert substitute("${'}'} ok", VARS) == "} ok"


def test_dollar_escapes() -> None:
    assert substitute("$$", VARS) == "$"
    assert substitute("cost $$5 and $$w", VARS) == "cost $5 and $w"
    assert substitute("$$$w", VARS) == "$64"


def test_strings_without_dollar_are_unchanged() -> None:
    text = "plain {braces} text"
    assert substitute(text, VARS) is text


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("5 $", 2, "'$' must be followed"),
        ("$5", 0, "'$' must be followed"),
        ("a $-b", 2, "'$' must be followed"),
        ("x ${w", 2, "unterminated"),
        ("x ${ }", 4, "empty expression"),
    ],
)
def test_bad_dollar_syntax(text: str, offset: int, words: str) -> None:
    error = error_of(substitute, text, VARS)
    assert words in error.message
    assert error.offset == offset


# ----------------------------------------------------------------------------- references


def test_references() -> None:
    text = "conv $stride ${max(w, a) + b[0]} ${true} $$x $name.y"
    assert references(text) == {"stride", "w", "a", "b", "name"}
    assert references("no refs") == set()
    assert references("${min(1, 2)}") == set()


# ----------------------------------------------------------------------------- resolve_variables


def test_resolve_variables_in_dependency_order() -> None:
    definitions = {
        "label": "net-$wide",
        "wide": "${base * 2}",
        "base": 64,
        "kernels": [3, 5],
        "first": "${kernels[0] + k}",
    }
    resolved = resolve_variables(definitions, {"k": 1})
    assert resolved == {"label": "net-128", "wide": 128, "base": 64, "kernels": [3, 5], "first": 4}
    assert list(resolved) == list(definitions)


def test_resolve_variables_chained() -> None:
    definitions = {"d": "${c + 1}", "c": "${b + 1}", "b": "${a + 1}", "a": 1}
    assert resolve_variables(definitions) == {"d": 4, "c": 3, "b": 2, "a": 1}


def test_definitions_shadow_outer() -> None:
    assert resolve_variables({"w": 8, "x": "$w"}, {"w": 100}) == {"w": 8, "x": 8}


def test_cycle() -> None:
    error = error_of(resolve_variables, {"a": "${b}", "b": "${c}", "c": "${a * 2}"})
    assert error.message == "variables form a cycle: a -> b -> c -> a"
    assert error.field == "a"


def test_cycle_not_through_first_variable() -> None:
    error = error_of(resolve_variables, {"x": "$a", "a": "$b", "b": "$a"})
    assert error.message == "variables form a cycle: a -> b -> a"
    assert error.field == "a"


def test_self_reference_is_a_cycle() -> None:
    assert "a -> a" in error_of(resolve_variables, {"a": "${a + 1}"}).message


def test_resolve_undefined_has_field_and_hint() -> None:
    error = error_of(resolve_variables, {"width": 3, "depth": "${wdth * 2}"})
    assert error.message == "undefined variable 'wdth'"
    assert error.hint == "did you mean 'width'?"
    assert error.field == "depth"
    assert error.offset == 2


# ----------------------------------------------------------------------------- errors


def test_undefined_variable_did_you_mean_and_offset() -> None:
    error = error_of(substitute, "conv ${widht} 3", {"width": 1})
    assert error.message == "undefined variable 'widht'"
    assert error.hint == "did you mean 'width'?"
    assert error.offset == 7
    assert error.field is None and error.location is None


def test_undefined_in_evaluate_offset() -> None:
    assert error_of(evaluate, "1 + foo", {}).offset == 4
    assert error_of(evaluate, "  foo", {}).offset == 2
    assert error_of(substitute, "$foo", {}).offset == 1


def test_offsets_count_characters_not_bytes() -> None:
    error = error_of(substitute, "é ${'ü' + nope}", {})
    assert error.offset == 10


def test_expr_error_is_a_spec_error() -> None:
    error = ExprError("bad", offset=3, hint="h")
    assert isinstance(error, SpecError)
    assert (error.message, error.offset, error.hint, error.location) == ("bad", 3, "h", None)
    error.with_context(location=Location("net.yaml", 4, 9), path="layers[0]")
    assert str(error) == "net.yaml:4:9: layers[0]: bad\n  h"
    assert ExprError("x").offset == 0


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("${().__class__}", 5, "attribute access '.__class__' is not allowed"),
        ("${w.real}", 4, "attribute access '.real' is not allowed"),
        ("${__import__('os')}", 2, "function '__import__' is not allowed"),
        ("${open('f')}", 2, "function 'open' is not allowed"),
        ("${lambda: 1}", 2, "lambda is not allowed"),
        ("${(lambda: 1)()}", 3, "is not allowed"),
        ("${[x for x in xs]}", 2, "list comprehension is not allowed"),
        ("${(x for x in xs)}", 2, "generator expression is not allowed"),
        ("${f'{w}'}", 2, "f-string is not allowed"),
        ("${(y := 1)}", 3, "':=' is not allowed"),
        ("${max(*xs)}", 6, "'*' is not allowed"),
        ("${round(2.5, ndigits=1)}", 13, "keyword argument 'ndigits=' is not allowed"),
        ("${xs[0](1)}", 2, "is not allowed"),
        ("${xs[1:]}", 5, "slicing is not allowed"),
        ("${w, 1}", 2, "tuple is not allowed"),
        ("${ {1: 2} }", 3, "dict literal is not allowed"),
        ("${w << 1}", 2, "operator '<<' is not allowed"),
        ("${w is 1}", 2, "operator 'is' is not allowed"),
        ("${~w}", 2, "operator '~' is not allowed"),
        ("${b'x'}", 2, "bytes literal is not allowed"),
        ("${2j}", 2, "complex number is not allowed"),
    ],
)
def test_forbidden_constructs(text: str, offset: int, words: str) -> None:
    error = error_of(substitute, text, VARS)
    assert words in error.message
    assert error.offset == offset


def test_disallowed_function_names_the_allowed_ones() -> None:
    error = error_of(evaluate, "open('f')", {})
    assert "min" in error.hint and "ceil" in error.hint and "len" in error.hint
    assert error_of(evaluate, "mx(1, 2)", {}).hint == "did you mean 'max'?"


def test_bare_function_name() -> None:
    assert "is a function" in error_of(evaluate, "min", {}).message


def test_huge_power_is_rejected_quickly() -> None:
    start = time.perf_counter()
    error = error_of(evaluate, "9**9**9", {})
    assert "number too large" in error.message
    assert time.perf_counter() - start < 1.0
    assert evaluate("2 ** 59", {}) == 2**59


@pytest.mark.parametrize(
    "expression",
    ["10 ** 19", "1000000000000000001", "-(10 ** 18) - 1", "10.0 ** 400", "1e999", "2 ** 64"],
)
def test_number_too_large(expression: str) -> None:
    assert "number too large" in error_of(evaluate, expression, {}).message


def test_size_limits() -> None:
    assert "too long" in error_of(evaluate, "'x' * 20000", {}).message
    assert "too long" in error_of(evaluate, "[0] * 20000", {}).message
    assert "too long" in error_of(evaluate, "1 + " * 130 + "1", {}).message
    assert "too large" in error_of(evaluate, "[[0] * 1000] * 1000", {}).message
    assert len(evaluate("'x' * 10000", {})) == 10000


@pytest.mark.parametrize(
    ("expression", "offset"), [("w / 0", 4), ("w // (1 - 1)", 6), ("w % 0.0", 4), ("0 ** -1", 5)]
)
def test_division_by_zero(expression: str, offset: int) -> None:
    error = error_of(evaluate, expression, VARS)
    assert error.message == "division by zero"
    assert error.offset == offset


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("'a' * [1]", "unsupported operand types for '*': string and list"),
        ("'a' + 1", "unsupported operand types for '+': string and int"),
        ("true + 1", "bool and int"),
        ("-'a'", "unary '-'"),
        ("1 < 'a'", "cannot compare int and string"),
        ("1 in 5", "'in'"),
        ("(-8) ** 0.5", "not a real number"),
    ],
)
def test_type_errors(expression: str, words: str) -> None:
    assert words in error_of(evaluate, expression, {}).message


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("${w +}", 5),  # end of the expression
        ("ab ${w ) 2}", 7),  # the stray ')'
        ("${1 + $w}", 6),  # the '$'
    ],
)
def test_syntax_error_offsets(text: str, offset: int) -> None:
    error = error_of(substitute, text, VARS)
    assert error.message.startswith("invalid expression")
    assert error.offset == offset


def test_syntax_error_in_evaluate() -> None:
    assert error_of(evaluate, "1 + )", {}).offset == 4


def test_dollar_inside_expression_gets_a_hint() -> None:
    assert "without '$'" in error_of(substitute, "${1 + $w}", VARS).hint


def test_multiline_expression() -> None:
    assert substitute("${w +\n  1}", VARS) == 65


# ----------------------------------------------------------------------------- property


@given(
    st.integers(min_value=-1000, max_value=1000),
    st.integers(min_value=-1000, max_value=1000),
    st.sampled_from(["+", "-", "*", "//"]),
)
def test_binary_ops_match_python(a: int, b: int, op: str) -> None:
    variables = {"a": a, "b": b}
    if op == "//" and b == 0:
        assert error_of(evaluate, f"a {op} b", variables).message == "division by zero"
        return
    python = {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else None}[op]
    assert evaluate(f"a {op} b", variables) == python
