"""Safe arithmetic for `${...}` and `$name` in spec strings.

Expressions are parsed with `ast.parse(..., mode="eval")` and evaluated by walking a whitelist of
node types; Python's `eval`, `exec` and `compile` are never used. Every intermediate result is
checked against size limits, so no expression can run for long or build a huge value.
"""

from __future__ import annotations

import ast
import functools
import io
import itertools
import math
import operator
import re
import tokenize
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn

from netspec.errors import Location, SpecError, did_you_mean
from netspec.values import format_value

Value = int | float | bool | str | None | list
"""What a variable may hold, and what an expression may produce."""

MAX_EXPRESSION_CHARS = 500
MAX_INT = 10**18
MAX_EXPONENT = 64
MAX_STRING_CHARS = 10_000
MAX_LIST_ITEMS = 10_000
MAX_TOTAL_SIZE = 100_000
"""Cap on a value's total size (list items plus string characters, nested lists included)."""

_LITERAL_NAMES: dict[str, Value] = {
    "true": True,
    "false": False,
    "none": None,
    "True": True,
    "False": False,
    "None": None,
}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ROW_INPUT = "\u0131n"
"""The variable that holds a row's input shape `[H, W, C]`. Specs write `in.h`, `in.w`,
`in.c` (`$in.c` or `${in.c * 2}`); `in` is a Python keyword, so the parser reads the text with
`in` spelled as this name (dotless i, n: the same length, and no spec variable can be named so,
since variable names are ASCII)."""
INPUT_AXES = {"h": 0, "w": 1, "c": 2}
"""`in.h`, `in.w`, `in.c`: the index of each in the row input's shape."""
_INPUT_TEXT = re.compile(r"\bin(?=\s*\.\s*[A-Za-z_])")
_INPUT_REFERENCE = re.compile(r"in\.[A-Za-z_][A-Za-z0-9_]*")
_NO_VARIABLES: Mapping[str, Value] = MappingProxyType({})


class ExprError(SpecError):
    """A bad expression; `offset` is the 0-based position of the problem in the string given to
    `substitute()` or `evaluate()`, so a caller can add it to that string's column."""

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        *,
        path: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__(message, location, path=path, field=field, hint=hint)
        self.offset = offset


class _OpError(Exception):
    """An operation or function got values it cannot work with; the message says why."""


# ----------------------------------------------------------------------------- values


def _type_name(value: object) -> str:
    """The spec-facing name of a value's type."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _is_number(value: object) -> bool:
    """Ints and floats are numbers; bools are not (``true + 1`` is almost always a mistake)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _total_size(value: object, budget: int) -> int:
    """Items plus string characters, counted through nested lists; stops once past `budget`."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if total + len(item) > budget:
                return budget + 1
            stack.extend(item)
        total += len(item) if isinstance(item, str) else 1
        if total > budget:
            return total
    return total


def _limit_problem(value: object) -> str | None:
    """Why `value` is too big to be a result, or None if it is fine."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) > MAX_INT:
        return "number too large (the limit is 10**18)"
    if isinstance(value, float) and math.isnan(value):
        return "result is not a number (nan)"
    if isinstance(value, float) and math.isinf(value):
        return "number too large (the result is infinite)"
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return f"string too long ({len(value)} characters; the limit is {MAX_STRING_CHARS})"
    if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
        return f"list too long ({len(value)} items; the limit is {MAX_LIST_ITEMS})"
    if isinstance(value, list) and _total_size(value, MAX_TOTAL_SIZE) > MAX_TOTAL_SIZE:
        return f"list too large (more than {MAX_TOTAL_SIZE} items and characters in all)"
    return None


def _short(text: str, limit: int = 40) -> str:
    """`repr(text)`, cut short for error messages."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


_format = format_value


# ----------------------------------------------------------------------------- operators


def _numbers(symbol: str, a: object, b: object) -> None:
    """Refuse operands that are not both numbers."""
    if not (_is_number(a) and _is_number(b)):
        raise _OpError(
            f"unsupported operand types for '{symbol}': {_type_name(a)} and {_type_name(b)}"
        )


def _add(a: Value, b: Value) -> Value:
    """Numbers add; strings and lists concatenate."""
    if (isinstance(a, str) and isinstance(b, str)) or (isinstance(a, list) and isinstance(b, list)):
        return a + b
    _numbers("+", a, b)
    return a + b


def _repeat(sequence: str | list, count: int) -> str | list:
    """`"ab" * 3` or `[0] * 3`, refusing up front to build anything over the limits."""
    limit = MAX_STRING_CHARS if isinstance(sequence, str) else MAX_LIST_ITEMS
    if count > 0 and len(sequence) * count > limit:
        raise _OpError(f"result of '*' too long ({len(sequence) * count} > {limit})")
    return sequence * count


def _multiply(a: Value, b: Value) -> Value:
    """Numbers multiply; a string or list times an int repeats."""
    if isinstance(a, (str, list)) and _is_int(b):
        return _repeat(a, b)
    if _is_int(a) and isinstance(b, (str, list)):
        return _repeat(b, a)
    _numbers("*", a, b)
    return a * b


def _power(a: Value, b: Value) -> Value:
    """`a ** b`, refusing huge int powers before computing them."""
    _numbers("**", a, b)
    if _is_int(a) and _is_int(b) and abs(a) > 1 and b > MAX_EXPONENT:
        raise _OpError("number too large (the limit is 10**18)")
    result = a**b
    if isinstance(result, complex):
        raise _OpError("result of '**' is not a real number (negative base, fractional power)")
    return result


def _arithmetic(symbol: str, function: Callable[[Value, Value], Value]) -> Callable:
    """A numbers-only operator."""

    def apply(a: Value, b: Value) -> Value:
        _numbers(symbol, a, b)
        return function(a, b)

    return apply


_BINARY_OPERATORS: dict[type[ast.operator], tuple[str, Callable[[Value, Value], Value]]] = {
    ast.Add: ("+", _add),
    ast.Sub: ("-", _arithmetic("-", operator.sub)),
    ast.Mult: ("*", _multiply),
    ast.Div: ("/", _arithmetic("/", operator.truediv)),
    ast.FloorDiv: ("//", _arithmetic("//", operator.floordiv)),
    ast.Mod: ("%", _arithmetic("%", operator.mod)),
    ast.Pow: ("**", _power),
}
_FORBIDDEN_OPERATORS: dict[type[ast.AST], str] = {
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def _contains(item: Value, container: Value) -> bool:
    if isinstance(container, list) or (isinstance(container, str) and isinstance(item, str)):
        return item in container
    raise _OpError(f"cannot test {_type_name(item)} 'in' {_type_name(container)}")


_COMPARISONS: dict[type[ast.cmpop], tuple[str, Callable[[Value, Value], bool]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", _contains),
    ast.NotIn: ("not in", lambda a, b: not _contains(a, b)),
}


# ----------------------------------------------------------------------------- functions


def _number_argument(value: Value) -> int | float:
    if not _is_number(value):
        raise _OpError(f"expects a number, got {_type_name(value)}")
    return value


def _extreme(pick: Callable) -> Callable[..., Value]:
    """`min`/`max` over the arguments, or over the items of a single list argument."""

    def apply(*args: Value) -> Value:
        if len(args) == 1 and not isinstance(args[0], list):
            raise _OpError("takes a list, or two or more values")
        items = args[0] if len(args) == 1 else list(args)
        if not items:
            raise _OpError("needs at least one value")
        try:
            return pick(items)
        except TypeError:
            kinds = ", ".join(sorted({_type_name(v) for v in items}))
            raise _OpError(f"cannot compare values of types {kinds}") from None

    return apply


def _round(value: Value, digits: Value = None) -> Value:
    if digits is not None and not _is_int(digits):
        raise _OpError(f"expects an int number of digits, got {_type_name(digits)}")
    return round(_number_argument(value), digits)


def _to_int(value: Value) -> int:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _OpError(f"cannot convert string {_short(value)} to int") from None
    return int(_number_argument(value))


def _to_float(value: Value) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _OpError(f"cannot convert string {_short(value)} to float") from None
    return float(_number_argument(value))


def _length(value: Value) -> int:
    if not isinstance(value, (str, list)):
        raise _OpError(f"expects a list or string, got {_type_name(value)}")
    return len(value)


_FUNCTIONS: dict[str, tuple[Callable[..., Value], int, int | None]] = {
    "abs": (lambda x: abs(_number_argument(x)), 1, 1),
    "ceil": (lambda x: math.ceil(_number_argument(x)), 1, 1),
    "float": (_to_float, 1, 1),
    "floor": (lambda x: math.floor(_number_argument(x)), 1, 1),
    "int": (_to_int, 1, 1),
    "len": (_length, 1, 1),
    "max": (_extreme(max), 1, None),
    "min": (_extreme(min), 1, None),
    "round": (_round, 1, 2),
}
_FUNCTION_LIST = ", ".join(_FUNCTIONS)


def _arity_problem(name: str, count: int) -> str | None:
    """Why `count` arguments are wrong for function `name`, or None."""
    _, least, most = _FUNCTIONS[name]
    if least <= count and (most is None or count <= most):
        return None
    if most is None:
        return f"{name}() takes at least {least} argument(s), got {count}"
    wanted = str(least) if least == most else f"{least} to {most}"
    return f"{name}() takes {wanted} argument(s), got {count}"


# ----------------------------------------------------------------------------- evaluation

_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment expression ':='",
    ast.Starred: "unpacking with '*'",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Tuple: "tuple",
    ast.Slice: "slicing",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


@dataclass(frozen=True)
class _Source:
    """An expression as parsed: one line, no leading blanks, `base` = offset of its first char."""

    text: str
    base: int

    def offset(self, node: ast.AST, *, end: bool = False) -> int:
        """Offset in the original string of a node's start (or end); ast columns are UTF-8 bytes."""
        column = node.end_col_offset if end else node.col_offset
        return self.base + len(self.text.encode()[:column].decode("utf-8", "ignore"))

    def segment(self, node: ast.AST) -> str:
        return self.text[self.offset(node) - self.base : self.offset(node, end=True) - self.base]


@functools.lru_cache(maxsize=4096)
def _parse(expression: str, base: int) -> tuple[ast.expr, _Source]:
    """Parse the text of one expression that starts at `base` in the original string."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExprError(
            f"expression too long ({len(expression)} characters; the limit is "
            f"{MAX_EXPRESSION_CHARS})",
            offset=base,
        )
    flat = expression.replace("\r", " ").replace("\n", " ")  # same length, so offsets hold
    text = flat.lstrip(" \t\f")
    source = _Source(text, base + len(flat) - len(text))
    if not text.strip():
        raise ExprError("empty expression", offset=base, hint="write an expression, e.g. ${a * 2}")
    try:
        return ast.parse(_spell_row_input(text), mode="eval").body, source
    except SyntaxError as error:
        raise _syntax_error(error, source) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(f"invalid expression '{text.strip()}'", offset=source.base) from None


def _spell_row_input(text: str) -> str:
    """`in.c` -> ROW_INPUT + `.c` where `in` is a name (not inside a string literal)."""
    if "in" not in text or "." not in text:
        return text
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text  # ast.parse reports the problem
    starts = [
        token.start[1]
        for token, following in itertools.pairwise(tokens)
        if token.type == tokenize.NAME
        and token.string == "in"
        and following.string == "."
        and _INPUT_TEXT.match(text, token.start[1])
    ]
    for start in starts:
        text = text[:start] + ROW_INPUT + text[start + 2 :]
    return text


def _syntax_error(error: SyntaxError, source: _Source) -> ExprError:
    """An ExprError at the place Python's parser complained about."""
    column = (error.offset or 0) - 1
    if column < 0 or column > len(source.text):
        column = len(source.text.rstrip())
    hint = None
    if source.text.strip() == "in":
        return ExprError(
            "'in' alone is not a value: write in.h, in.w or in.c (the height, width or channels "
            "of the row's input)",
            offset=source.base,
        )
    if "$" in source.text:
        hint = "inside ${...} write variable names without '$', e.g. ${width * 2}"
    return ExprError(
        f"invalid expression '{source.text.strip()}': {error.msg}",
        offset=source.base + column,
        hint=hint,
    )


class _Evaluator:
    """Walks a parsed expression, evaluating only whitelisted node types."""

    def __init__(
        self, source: _Source, variables: Mapping[str, Value], names: Collection[str]
    ) -> None:
        self.source = source
        self.variables = variables
        self.names = names  # what an undefined name's "did you mean" chooses from

    def fail(
        self, message: str, node: ast.AST, *, hint: str | None = None, offset: int | None = None
    ) -> NoReturn:
        """Raise an ExprError at `node` (or at `offset`, an offset in the original string)."""
        at = self.source.offset(node) if offset is None else offset
        raise ExprError(message, hint=hint, offset=at)

    def checked(self, value: Value, node: ast.AST) -> Value:
        problem = _limit_problem(value)
        if problem:
            self.fail(problem, node)
        return value

    def visit(self, node: ast.AST) -> Value:
        handler = self._HANDLERS.get(type(node))
        if handler is None:
            self.forbidden(node)
        return handler(self, node)

    def forbidden(self, node: ast.AST) -> NoReturn:
        if isinstance(node, ast.Attribute):
            at = self.source.offset(node, end=True) - len(node.attr)
            self.fail(
                f"attribute access '.{node.attr}' is not allowed in expressions", node, offset=at
            )
        what = _FORBIDDEN_NODES.get(type(node), type(node).__name__)
        hint = "use a list instead: [a, b]" if isinstance(node, ast.Tuple) else None
        self.fail(f"{what} is not allowed in expressions", node, hint=hint)

    def constant(self, node: ast.Constant) -> Value:
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            return self.checked(value, node)
        kinds = {bytes: "bytes literal", complex: "complex number"}
        what = kinds.get(type(value), f"literal {self.source.segment(node)}")
        self.fail(f"{what} is not allowed in expressions", node)

    def name(self, node: ast.Name) -> Value:
        if node.id in _LITERAL_NAMES:
            return _LITERAL_NAMES[node.id]
        if node.id == ROW_INPUT:
            self.row_input_problem(node)
        if node.id in self.variables:
            return self.variables[node.id]
        if node.id in _FUNCTIONS:
            self.fail(f"'{node.id}' is a function; call it, e.g. {node.id}(x)", node)
        self.fail(f"undefined variable '{node.id}'", node, hint=self.undefined_hint(node.id))

    def row_input_problem(self, node: ast.Name) -> NoReturn:
        """`in` written where no row input exists, or without `.h`, `.w` or `.c`."""
        if ROW_INPUT not in self.variables and ROW_INPUT not in self.names:
            self.fail(
                "'in' (the shape of a row's input) is known only in a row's values",
                node,
                hint="use it in a layer row, `if` or `repeat`; not in vars, defaults or expect",
            )
        self.fail(
            "write in.h, in.w or in.c: the height, width or channels of the row's input", node
        )

    def attribute(self, node: ast.Attribute) -> Value:
        """`in.h`, `in.w`, `in.c`: the only attributes an expression can read."""
        self.check_attribute(node)
        assert isinstance(node.value, ast.Name)
        if ROW_INPUT not in self.variables:
            self.row_input_problem(node.value)
        shape = self.variables[ROW_INPUT]
        assert isinstance(shape, list)
        return shape[INPUT_AXES[node.attr]]

    def check_attribute(self, node: ast.Attribute) -> None:
        """Refuse any attribute but `in.h`, `in.w`, `in.c`."""
        if not (isinstance(node.value, ast.Name) and node.value.id == ROW_INPUT):
            self.forbidden(node)
        if node.attr not in INPUT_AXES:
            at = self.source.offset(node, end=True) - len(node.attr)
            self.fail(
                f"the row's input has no '.{node.attr}'",
                node,
                offset=at,
                hint="write in.h, in.w or in.c (height, width, channels)",
            )

    def undefined_hint(self, name: str) -> str | None:
        names = sorted(n for n in self.names if n != ROW_INPUT)
        hint = did_you_mean(name, names)
        if hint is None and not names:
            hint = "no variables are defined here"
        elif hint is None and len(names) <= 20:
            hint = "defined variables: " + ", ".join(names)
        if hint and not hint.startswith("did") and ROW_INPUT in self.names:
            hint += "; the row's input: in.h, in.w, in.c"
        return hint

    def list_(self, node: ast.List) -> Value:
        return self.checked([self.visit(item) for item in node.elts], node)

    def unary(self, node: ast.UnaryOp) -> Value:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.Invert):
            self.fail("operator '~' is not allowed in expressions", node)
        symbol = "-" if isinstance(node.op, ast.USub) else "+"
        if not _is_number(operand):
            self.fail(f"bad operand type for unary '{symbol}': {_type_name(operand)}", node)
        return self.checked(-operand if symbol == "-" else operand, node)

    def binary(self, node: ast.BinOp) -> Value:
        entry = _BINARY_OPERATORS.get(type(node.op))
        if entry is None:
            symbol = _FORBIDDEN_OPERATORS.get(type(node.op), type(node.op).__name__)
            self.fail(f"operator '{symbol}' is not allowed in expressions", node)
        left, right = self.visit(node.left), self.visit(node.right)
        try:
            return self.checked(entry[1](left, right), node)
        except ZeroDivisionError:
            self.fail("division by zero", node.right)
        except OverflowError:
            self.fail("number too large", node)
        except _OpError as error:
            self.fail(str(error), node)

    def boolean(self, node: ast.BoolOp) -> Value:
        stop_when = isinstance(node.op, ast.Or)  # `or` stops at a true value, `and` at a false one
        value: Value = None
        for operand in node.values:
            value = self.visit(operand)
            if bool(value) == stop_when:
                break
        return value

    def compare(self, node: ast.Compare) -> Value:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=False):
            right = self.visit(comparator)
            if not self.compare_one(op, left, right, node):
                return False
            left = right
        return True

    def compare_one(self, op: ast.cmpop, left: Value, right: Value, node: ast.AST) -> bool:
        entry = _COMPARISONS.get(type(op))
        if entry is None:
            symbol = _FORBIDDEN_OPERATORS.get(type(op), type(op).__name__)
            self.fail(f"operator '{symbol}' is not allowed in expressions; use '==' or '!='", node)
        symbol, function = entry
        try:
            return bool(function(left, right))
        except _OpError as error:
            self.fail(str(error), node)
        except TypeError:
            kinds = f"{_type_name(left)} and {_type_name(right)}"
            self.fail(f"cannot compare {kinds} with '{symbol}'", node)

    def if_else(self, node: ast.IfExp) -> Value:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def subscript(self, node: ast.Subscript) -> Value:
        container = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            self.forbidden(node.slice)
        index = self.visit(node.slice)
        if not isinstance(container, list):
            self.fail(f"only lists can be indexed, not {_type_name(container)}", node)
        if not _is_int(index):
            self.fail(f"list index must be an int, not {_type_name(index)}", node.slice)
        if not -len(container) <= index < len(container):
            self.fail(f"index {index} out of range for a list of {len(container)}", node.slice)
        return container[index]

    def call(self, node: ast.Call) -> Value:
        if not isinstance(node.func, ast.Name):
            self.fail(
                f"calling '{self.source.segment(node.func)}' is not allowed in expressions",
                node.func,
                hint=f"only these functions can be called: {_FUNCTION_LIST}",
            )
        name = node.func.id
        if name not in _FUNCTIONS:
            hint = did_you_mean(name, _FUNCTIONS) or f"allowed functions: {_FUNCTION_LIST}"
            self.fail(f"function '{name}' is not allowed in expressions", node.func, hint=hint)
        for keyword in node.keywords:
            what = f"'{keyword.arg}='" if keyword.arg else "'**'"
            self.fail(
                f"keyword argument {what} is not allowed in expressions",
                keyword,
                hint=f"pass the arguments of {name}() by position",
            )
        args = [self.visit(arg) for arg in node.args]
        problem = _arity_problem(name, len(args))
        if problem:
            self.fail(problem, node)
        try:
            return self.checked(_FUNCTIONS[name][0](*args), node)
        except OverflowError:
            self.fail(f"{name}(): number too large", node)
        except ValueError:
            self.fail(f"{name}(): not a number", node)
        except _OpError as error:
            self.fail(f"{name}() {error}", node)

    _HANDLERS: ClassVar[dict[type[ast.AST], Callable[[_Evaluator, ast.AST], Value]]] = {
        ast.Constant: constant,
        ast.Name: name,
        ast.List: list_,
        ast.UnaryOp: unary,
        ast.BinOp: binary,
        ast.BoolOp: boolean,
        ast.Compare: compare,
        ast.IfExp: if_else,
        ast.Subscript: subscript,
        ast.Call: call,
        ast.Attribute: attribute,
    }


def _evaluate_at(
    expression: str, base: int, variables: Mapping[str, Value], names: Collection[str]
) -> Value:
    """Evaluate `expression`, which starts at offset `base` of the caller's string."""
    tree, source = _parse(expression, base)
    try:
        return _Evaluator(source, variables, names).visit(tree)
    except RecursionError:
        raise ExprError("expression nested too deeply", offset=source.base) from None


def evaluate(expression: str, variables: Mapping[str, Value]) -> Value:
    """Evaluate one expression (the text inside ``${...}``) with the given variables."""
    return _evaluate_at(expression, 0, variables, variables.keys())


def check_expression(expression: str, names: Collection[str]) -> ast.expr:
    """Parse one expression and check its structure without evaluating it: only the node types,
    operators and functions `evaluate` accepts, and only variables from `names`.

    For code that translates expressions instead of evaluating them (the Flax generator), so a
    translated expression can never be more than arithmetic on known variables.
    """
    tree, source = _parse(expression, 0)
    checker = _Evaluator(source, {}, names)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    read: set[int] = set()  # the `in` of each `in.c`: ast.walk visits the parent first
    for node in ast.walk(tree):
        if isinstance(node, ast.expr_context):
            continue
        if isinstance(node, ast.operator | ast.cmpop | ast.boolop | ast.unaryop):
            if type(node) in _FORBIDDEN_OPERATORS:
                symbol = _FORBIDDEN_OPERATORS[type(node)]
                raise ExprError(f"operator '{symbol}' is not allowed in expressions")
            continue
        if type(node) not in _Evaluator._HANDLERS:
            checker.forbidden(node)
        if isinstance(node, ast.Attribute):
            checker.check_attribute(node)
            if ROW_INPUT not in names:
                checker.row_input_problem(node.value)  # type: ignore[arg-type]
            read.add(id(node.value))
        elif isinstance(node, ast.Name) and node.id == ROW_INPUT and id(node) not in read:
            checker.row_input_problem(node)
        if isinstance(node, ast.Constant):
            checker.constant(node)
        elif isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
        ):
            checker.call(node)  # raises the evaluator's message for this call
        elif (
            isinstance(node, ast.Name)
            and id(node) not in called
            and node.id not in _LITERAL_NAMES
            and node.id not in names
        ):
            checker.name(node)  # raises "undefined variable", with a hint
    return tree


# ----------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Reference:
    """A `${expr}` or `$name` in a string: the expression text and where that text starts."""

    expression: str
    offset: int


def closing_brace(text: str, start: int) -> int:
    """Index of the `}` that closes a `${` whose expression starts at `start`, or -1."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote and char == "\\":
            index += 1
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return -1


def _reference_at(text: str, dollar: int) -> tuple[_Reference, int]:
    """The reference whose `$` is at `dollar`, and the index just past it."""
    if text.startswith("{", dollar + 1):
        close = closing_brace(text, dollar + 2)
        if close < 0:
            raise ExprError(
                "unterminated '${' (no matching '}')",
                offset=dollar,
                hint="close the expression with '}' and check its quotes",
            )
        return _Reference(text[dollar + 2 : close], dollar + 2), close + 1
    match = _INPUT_REFERENCE.match(text, dollar + 1) or _NAME_RE.match(text, dollar + 1)
    if match is None:
        raise ExprError(
            "'$' must be followed by '{', a variable name or another '$'",
            offset=dollar,
            hint="write '$$' for a literal '$'",
        )
    return _Reference(match.group(), match.start()), match.end()


def split_template(text: str) -> list[str | _Reference]:
    """A string as literal text pieces and references (each with its `expression` text), the
    way `substitute` reads it: `$$` is a literal `$`, `${...}` may hold braces and quotes."""
    return list(_scan(text))


def _scan(text: str) -> Iterator[str | _Reference]:
    """Split a string into literal text and references, turning `$$` into `$`."""
    start = 0
    while (dollar := text.find("$", start)) >= 0:
        if dollar > start:
            yield text[start:dollar]
        if text.startswith("$", dollar + 1):
            yield "$"
            start = dollar + 2
            continue
        reference, start = _reference_at(text, dollar)
        yield reference
    if start < len(text):
        yield text[start:]


def _substitute(text: str, variables: Mapping[str, Value], names: Collection[str]) -> Value:
    """`substitute()`, with the names an undefined variable's hint chooses from."""
    if not isinstance(text, str) or "$" not in text:
        return text
    pieces = list(_scan(text))
    references = [piece for piece in pieces if isinstance(piece, _Reference)]
    literals = [piece for piece in pieces if isinstance(piece, str)]
    if len(references) == 1 and not "".join(literals).strip():
        return _evaluate_at(references[0].expression, references[0].offset, variables, names)
    parts, added = [], 0
    for piece in pieces:
        if isinstance(piece, _Reference):
            value = _evaluate_at(piece.expression, piece.offset, variables, names)
            piece = _interpolated(value, piece, MAX_STRING_CHARS - added)
            added += len(piece)
        parts.append(piece)
    return "".join(parts)


def evaluate_pieces(pieces: Iterable[Any], variables: Mapping[str, Value]) -> Value:
    """A template already split (literal text and references with `expression` and `offset`),
    evaluated as `substitute` evaluates the string it came from."""
    pieces = list(pieces)
    references = [piece for piece in pieces if not isinstance(piece, str)]
    literals = [piece for piece in pieces if isinstance(piece, str)]
    names = variables.keys()
    if len(references) == 1 and not "".join(literals).strip():
        return _evaluate_at(references[0].expression, references[0].offset, variables, names)
    parts, added = [], 0
    for piece in pieces:
        if not isinstance(piece, str):
            value = _evaluate_at(piece.expression, piece.offset, variables, names)
            piece = _interpolated(value, piece, MAX_STRING_CHARS - added)
            added += len(piece)
        parts.append(piece)
    return "".join(parts)


def _interpolated(value: Value, reference: _Reference, room: int) -> str:
    """A value as text, if it fits in the `room` left for interpolated characters."""
    if _total_size(value, MAX_TOTAL_SIZE) <= MAX_TOTAL_SIZE:
        text = _format(value)
        if len(text) <= room:
            return text
    raise ExprError(
        f"interpolated values would add more than {MAX_STRING_CHARS} characters",
        offset=reference.offset,
    )


def substitute(text: str, variables: Mapping[str, Value]) -> Value:
    """Replace `${expr}` and `$name` references in a string.

    A string that is (apart from surrounding blanks) one reference gives the typed value;
    otherwise each value is interpolated as text (`64`, `0.5`, `true`). `$$` is a literal `$`.
    """
    return _substitute(text, variables, variables.keys())


def _names_in(tree: ast.AST) -> set[str]:
    """Variable names an expression reads (not literals like `true`, not called functions)."""
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in _LITERAL_NAMES
    }


def references(text: str) -> set[str]:
    """Names of the variables a string refers to, through `$name` and inside `${...}`."""
    if not isinstance(text, str) or "$" not in text:
        return set()
    found: set[str] = set()
    for piece in _scan(text):
        if isinstance(piece, _Reference):
            found |= _names_in(_parse(piece.expression, piece.offset)[0])
    return found


# ----------------------------------------------------------------------------- variables


def _dependencies(definitions: Mapping[str, Value]) -> dict[str, list[str]]:
    """For each definition, the other definitions it refers to (in definition order)."""
    graph = {}
    for name, value in definitions.items():
        try:
            used = references(value) if isinstance(value, str) else set()
        except ExprError as error:
            raise error.with_context(field=name) from None
        graph[name] = [other for other in definitions if other in used]
    return graph


def _dependency_order(graph: Mapping[str, list[str]]) -> list[str]:
    """Names ordered so each comes after what it depends on; a cycle is an ExprError."""
    order: list[str] = []
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path, pending = [root], [iter(graph[root])]
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                done.add(path[-1])
                order.append(path.pop())
                pending.pop()
            elif dependency in path:
                cycle = [*path[path.index(dependency) :], dependency]
                raise ExprError(
                    "variables form a cycle: " + " -> ".join(cycle),
                    field=cycle[0],
                    hint="a variable cannot depend on itself, directly or through others",
                )
            elif dependency not in done:
                path.append(dependency)
                pending.append(iter(graph[dependency]))
    return order


def resolve_variables(
    definitions: Mapping[str, Value], outer: Mapping[str, Value] = _NO_VARIABLES
) -> dict[str, Value]:
    """Evaluate variable definitions that may refer to each other and to `outer`.

    Returns the definitions' values (not `outer`'s), in the order they were given. Errors carry
    `field` = the variable being defined; strings go through `substitute()`, others stay as given.
    """
    order = _dependency_order(_dependencies(definitions))
    scope = dict(outer)
    names = set(outer) | set(definitions)
    for name in order:
        value = definitions[name]
        if isinstance(value, str):
            try:
                value = _substitute(value, scope, names)
            except ExprError as error:
                raise error.with_context(field=name) from None
        scope[name] = value
    return {name: scope[name] for name in definitions}
