"""YAML text -> plain Python data that remembers where every node came from.

Only PyYAML's parser and composer run on the text; the Python values are built here from the node
graph, so no YAML tag can ever construct an object or run code. Scalars follow the YAML 1.2 core
schema (``yes``/``on``/``no`` stay strings, ``1e-3`` is a float). Every problem becomes a
`SpecError` that points at ``file:line:column``.

Anchors and aliases are expanded into fresh copies (no shared objects), and every constructed node
counts towards `MAX_NODES`, so an alias bomb stops early. Errors that only show up inside an alias
expansion (too many nodes, too deep) point at the alias as written in the document.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator

from yaml.composer import Composer
from yaml.error import Mark, MarkedYAMLError, YAMLError
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from netspec.errors import Location, SpecError

from .expr import closing_brace
from .values import _FALSE, _FLOAT, _HEX, _INF, _INT, _NAN, _NULL, _OCT, _TRUE, read_scalar

try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlMap",
    "YamlSeq",
    "key_location",
    "load_file",
    "load_yaml",
    "locate",
]

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024

_EMPTY_MESSAGE = "file is empty: expected a mapping with `name`, `input` and `layers`"
_EMPTY_HINT = "start the spec with a line like `name: my_net`"
_TAG_PREFIX = "tag:yaml.org,2002:"
_ALLOWED_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!seq, !!map"


class YamlMap(dict):
    """A mapping read from YAML: a dict with str keys, plus where it and each entry were written.

    Built in code, it simply has no locations: `loc` is None and the location dicts are empty.
    """

    loc: Location | None
    key_locs: dict[str, Location]
    value_locs: dict[str, Location]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.loc = None
        self.key_locs = {}
        self.value_locs = {}


class YamlSeq(list):
    """A sequence read from YAML: a list, plus where it and each item were written."""

    loc: Location | None
    item_locs: list[Location]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.loc = None
        self.item_locs = []


# --------------------------------------------------------------------------------------------
# Public entry points


def load_file(path: str | os.PathLike[str]) -> object:
    """Read and parse one spec file; see `load_yaml`."""
    name = str(path)
    try:
        with open(path, "rb") as stream:
            # One byte over the limit is enough to report it; never slurp a huge (or endless) file.
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(
            f"spec file '{name}' does not exist", hint="check the path and the spelling"
        ) from None
    except IsADirectoryError:
        raise SpecError(f"'{name}' is a directory, not a spec file") from None
    except OSError as err:
        raise SpecError(f"cannot read spec file '{name}': {err.strerror or err}") from None
    return load_yaml(data, name)


def load_yaml(source: str | bytes, filename: str) -> object:
    """Parse one YAML document into YamlMap / YamlSeq / str / int / float / bool / None."""
    text = _decode(source, filename)
    if _is_blank(text):  # checked before parsing: tabs on blank lines would be a syntax error
        raise SpecError(_EMPTY_MESSAGE, Location(filename, 1, 1), hint=_EMPTY_HINT)
    masked, expressions = mask_expressions(text)
    try:
        root, aliases = _compose(masked, filename)
        if root is None or _is_empty_scalar(root):
            raise SpecError(_EMPTY_MESSAGE, Location(filename, 1, 1), hint=_EMPTY_HINT)
        if expressions:
            _unmask(root, expressions)
        return _Builder(filename, root, aliases).build()
    except MarkedYAMLError as err:
        raise _syntax_error(err, text, filename) from None
    except YAMLError as err:  # no position attached (should not happen after _decode's checks)
        raise SpecError(f"invalid YAML: {err}", Location(filename, 1, 1)) from None
    except RecursionError:
        raise SpecError(
            f"the document is nested too deeply to read (the limit is {MAX_DEPTH} levels)",
            Location(filename, 1, 1),
        ) from None


_MASK_FIRST, _MASK_BASE = 0xE000, 0x1900  # the private-use area U+E000..U+F8FF
_MASK_CHARS = re.compile("[\ue000-\uf8ff]")
_MASKED = re.compile("\\$[\ue000-\uf8ff]+")


def mask_expressions(text: str) -> tuple[str, dict[str, str]]:
    """`text` with each one-line `${...}` replaced by a placeholder of the same length that
    YAML reads as plain text (so `[conv 1x1 ${c * 2}, relu]` is a two-item flow list, not a
    syntax error at `{`), and the placeholders' original texts. Lines and columns do not move.

    An expression with quotes or backslashes is left as written: in a quoted scalar YAML would
    unescape it, so restoring the raw text would change its value."""
    if "${" not in text or _MASK_CHARS.search(text):
        return text, {}
    pieces: list[str] = []
    originals: dict[str, str] = {}
    start = 0
    while (dollar := text.find("${", start)) >= 0:
        close = closing_brace(text, dollar + 2)
        span = text[dollar : close + 1]
        placeholder = _placeholder(len(originals), len(span))
        if close < 0 or placeholder is None or any(c in span for c in "\n\r'\"\\"):
            pieces.append(text[start : dollar + 2])
            start = dollar + 2
            continue
        originals[placeholder] = span
        pieces += [text[start:dollar], placeholder]
        start = close + 1
    return "".join(pieces) + text[start:], originals


def _placeholder(number: int, length: int) -> str | None:
    """`$` and private-use characters spelling `number`, `length` characters in all."""
    digits = []
    for _ in range(length - 1):
        number, digit = divmod(number, _MASK_BASE)
        digits.append(chr(_MASK_FIRST + digit))
    return None if number else "$" + "".join(digits)


def _unmask(root: Node, originals: dict[str, str]) -> None:
    """Put the expressions `mask_expressions` hid back into the scalars of a node graph."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if "$" in node.value:
                node.value = _MASKED.sub(lambda m: originals.get(m.group(), m.group()), node.value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack += [key, value]


def locate(root: object, path: tuple[str | int, ...]) -> Location | None:
    """Where the node at `path` (mapping keys / list indices) starts.

    When the path leaves known territory (a missing key, an index out of range, a scalar, or
    containers built in code without locations), the location of the deepest node reached.
    """
    node = root
    here = getattr(root, "loc", None)
    for step in path:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            where = getattr(node, "value_locs", {}).get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            item_locs = getattr(node, "item_locs", [])
            where = item_locs[step] if step < len(item_locs) else None
        else:
            return here
        if where is None:
            return here
        node, here = node[step], where
    return here


def key_location(mapping: YamlMap, key: str) -> Location | None:
    """Where `key` is written in `mapping`, or None if unknown."""
    return getattr(mapping, "key_locs", {}).get(key)


# --------------------------------------------------------------------------------------------
# Input checks: size, binary, encoding, forbidden characters

_BOM = b"\xef\xbb\xbf"
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# The characters YAML allows in a stream (the same set PyYAML's reader accepts).
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _decode(source: str | bytes, filename: str) -> str:
    """Check the raw input and return it as text without a BOM."""
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else bytes(source)
    start = Location(filename, 1, 1)
    if len(data) > MAX_BYTES:
        raise SpecError(
            f"file is {len(data)} bytes, more than the {MAX_BYTES} bytes (4 MiB) a spec may have",
            start,
            hint="a network spec is a short text file; check that this is the right file",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(
            "file is UTF-16 (or UTF-32) text; the file must be UTF-8 text",
            start,
            hint="re-save it as UTF-8",
        )
    if _looks_binary(data):
        raise SpecError(
            "file looks like a binary file, not YAML",
            start,
            hint="a spec is a UTF-8 text file; check that this is the right file",
        )
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _encoding_error(data, err, filename) from None
    bad = _NON_PRINTABLE.search(text)
    if bad:
        raise SpecError(
            f"character U+{ord(bad.group()):04X} is not allowed in YAML text",
            _text_location(text, bad.start(), filename),
            hint="delete it; YAML text may not contain control characters",
        )
    return text


def _is_blank(text: str) -> bool:
    """Only whitespace and comments."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in _BREAK.split(text))


def _looks_binary(data: bytes) -> bool:
    """NUL bytes, or many control characters near the start, mean this is not a text file."""
    if b"\x00" in data:
        return True
    sample = data[:8192]
    controls = sum(1 for byte in sample if (byte < 0x20 and byte not in b"\t\n\r") or byte == 0x7F)
    # A stray control character or two in real text gets a located error from `_decode` instead.
    return controls >= 4 and controls * 20 > len(sample)


def _encoding_error(data: bytes, err: UnicodeDecodeError, filename: str) -> SpecError:
    before = data[: err.start].decode("utf-8")  # valid: the error is the first bad byte
    return SpecError(
        f"the file must be UTF-8 text, but byte 0x{data[err.start]:02X} here is not valid UTF-8",
        _text_location(before, len(before), filename),
        hint="re-save the file as UTF-8 (it may have been saved as Latin-1 or Windows-1252)",
    )


def _text_location(text: str, index: int, filename: str) -> Location:
    """1-based line and column of `text[index]`, counting line breaks as YAML does."""
    line, line_start = 1, 0
    for match in _BREAK.finditer(text, 0, index):
        line, line_start = line + 1, match.end()
    return Location(filename, line, index - line_start + 1)


# --------------------------------------------------------------------------------------------
# Parsing: PyYAML's parser and composer only, with a resolver that leaves every tag unresolved


class _Tag(str):
    """A tag no YAML text can produce: compared by identity, never by value."""


_UNTAGGED = _Tag("netspec:untagged")


class _Resolver(BaseResolver):
    """Mark nodes without an explicit tag; the core schema is applied later, in `_Builder`."""

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        return _UNTAGGED


class _PyLoader(Reader, Scanner, Parser, Composer, _Resolver):
    """Pure-Python parser + composer."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


if CParser is not None:

    class _CLoader(CParser, _Resolver):
        """libyaml parser + composer."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

    _LOADER: type = _CLoader
else:
    _LOADER = _PyLoader


def _compose(text: str, filename: str) -> tuple[Node | None, list[Mark]]:
    """The node graph of the single document in `text` (None if there is none), and the
    positions of its aliases in document order."""
    try:
        aliases = _check_events(_LOADER(text), filename)
    except YAMLError:
        if _LOADER is _PyLoader:
            raise
        # libyaml has nesting limits of its own (0.2.6 stops at 1,000 flow levels, while its
        # scanner reads ahead), reported in its own words. The pure-Python parser walks the same
        # text without such a limit, so netspec's own cap, or the same syntax error, decides.
        aliases = _check_events(_PyLoader(text), filename)
    loader = _LOADER(text)
    if not loader.check_node():
        return None, aliases
    return loader.get_node(), aliases


def _check_events(loader: Parser, filename: str) -> list[Mark]:
    """Walk the event stream once: reject a second document and deep nesting before composing.

    PyYAML's composers recurse once per level, so nesting is checked here, on the flat event
    stream. Returns the positions of all aliases, in order.
    """
    depth, documents, aliases = 0, 0, []
    while True:
        event = loader.get_event()
        if isinstance(event, StreamEndEvent):
            return aliases
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SpecError(
                    "a second YAML document starts here; a spec file holds exactly one",
                    _location(event.start_mark, filename),
                    hint="remove this `---` (or everything after it), or split the file in two",
                )
        elif isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(_location(event.start_mark, filename))
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, AliasEvent):
            aliases.append(event.start_mark)


def _is_empty_scalar(node: Node) -> bool:
    """A document that is only `---`: an untagged, plain, empty scalar."""
    return (
        isinstance(node, ScalarNode) and node.tag is _UNTAGGED and not node.style and not node.value
    )


def _location(mark: Mark, filename: str) -> Location:
    return Location(filename, mark.line + 1, mark.column + 1)


def _too_deep(location: Location) -> SpecError:
    return SpecError(
        f"nested more than {MAX_DEPTH} levels deep",
        location,
        hint="flatten the structure; a spec never needs this much nesting",
    )


# What to write instead, by the character a syntax error points at or the bracket or quote it
# started in. Read from the text, not from the parser's wording, which differs between PyYAML's
# parser, libyaml and their versions.
_OPENERS = {
    "[": ("list", "close the list with `]` (and separate items with commas)"),
    "{": ("mapping", "close the mapping with `}` (and separate entries with commas)"),
    "'": ("quoted string", "close the quoted string"),
    '"': ("quoted string", "close the quoted string"),
}
_AT_CHARACTER = {
    ":": "put a space after each `key:`, and quote a value that itself contains ': '; "
    "or check this line's indentation",
    "*": "define the anchor (`&name`) before using it as `*name`",
    "&": "give each `&anchor` its own name",
}
_INDENTATION_HINT = (
    "check the indentation: the items of one list, and the keys of one mapping, must line up"
)


def _syntax_error(err: MarkedYAMLError, text: str, filename: str) -> SpecError:
    """Turn a PyYAML/libyaml error into a located SpecError that says what to fix.

    The parser's own words stay in the message; what netspec adds (the bracket or quote left
    open, the hint) is derived from the text at the marks.
    """
    mark = err.problem_mark or err.context_mark
    location = _location(mark, filename) if mark else Location(filename, 1, 1)
    first = err.context_mark
    if (
        mark is not None
        and first is not None
        and first.line < mark.line
        and _char_at(text, mark) == "&"
        and _char_at(text, first) == "&"
    ):
        return SpecError(
            f"this anchor name is already used at line {first.line + 1}",
            location,
            hint=_AT_CHARACTER["&"],
        )
    after_list = _text_after_flow_row(text, mark)
    if after_list is not None:
        return SpecError(
            f"`{after_list}` after the closing `]`: YAML ends a `[...]` row at its bracket",
            location,
            hint="write `expect: ...` (or `from:`, `if:`, ...) as a key on the next line, lined "
            "up with the row's name, or write the row as `layers:` with one row per line",
        )
    problem = (err.problem or err.context or "not valid YAML").strip()
    message = f"invalid YAML: {problem}"
    opened = _opened_at(err, text)
    if opened:
        kind, _ = _OPENERS[opened[0]]
        message += f" (in the {kind} that starts at line {opened[1]}, column {opened[2]})"
    return SpecError(message, location, hint=_syntax_hint(text, mark, opened))


def _text_after_flow_row(text: str, mark: Mark | None) -> str | None:
    """The words after a row's `[...]` (`-> 8x8x8`) where YAML complains about them."""
    if mark is None:
        return None
    before = _line_at(text, mark)[: mark.column].rstrip()
    rest = _line_at(text, mark)[mark.column :].split(" #")[0].strip()
    if not before.endswith("]") or not rest or ": [" not in before:
        return None
    return rest


def _opened_at(err: MarkedYAMLError, text: str) -> tuple[str, int, int] | None:
    """(bracket or quote, line, column) when the error's context is an unclosed `[`, `{` or quote
    that starts somewhere else than the problem."""
    context, problem = err.context_mark, err.problem_mark
    if context is None or problem is None:
        return None
    if (context.line, context.column) == (problem.line, problem.column):
        return None
    opener = _char_at(text, context)
    return (opener, context.line + 1, context.column + 1) if opener in _OPENERS else None


def _syntax_hint(text: str, mark: Mark | None, opened: tuple[str, int, int] | None) -> str:
    if mark is not None and "\t" in _line_at(text, mark)[: mark.column + 1]:
        return "indent with spaces: YAML does not allow tabs for indentation"
    if opened:
        return _OPENERS[opened[0]][1]
    if mark is not None and _char_at(text, mark) in _AT_CHARACTER:
        return _AT_CHARACTER[_char_at(text, mark)]
    return _INDENTATION_HINT


def _line_at(text: str, mark: Mark) -> str:
    lines = _BREAK.split(text)
    return lines[mark.line] if mark.line < len(lines) else ""


def _char_at(text: str, mark: Mark) -> str:
    lines = _BREAK.split(text)
    if mark.line < len(lines) and mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


# --------------------------------------------------------------------------------------------
# Building Python values from the node graph

_NOT_FOUND = object()


def _core_null(text: str) -> object:
    return None if _NULL.fullmatch(text) else _NOT_FOUND


def _core_bool(text: str) -> object:
    if _TRUE.fullmatch(text):
        return True
    return False if _FALSE.fullmatch(text) else _NOT_FOUND


def _core_int(text: str) -> object:
    if _INT.fullmatch(text):
        return int(text, 10)  # may raise ValueError past Python's digit limit
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    return int(text[2:], 16) if _HEX.fullmatch(text) else _NOT_FOUND


def _core_float(text: str) -> object:
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if _NAN.fullmatch(text) else _NOT_FOUND


def _core_number(text: str) -> object:
    """!!float accepts integers too, as floats."""
    value = _core_int(text)
    return float(value) if value is not _NOT_FOUND else _core_float(text)


def resolve_scalar(text: str) -> object:
    """A plain scalar under the YAML 1.2 core schema (one reading: `values.read_scalar`)."""
    return read_scalar(text)


# Explicit scalar tags: how to read the text, and what to tell the user when it does not fit.
_SCALAR_TAGS = {
    "str": (str, ""),
    "int": (_core_int, "a whole number like 42, 0o17 or 0x1F"),
    "float": (_core_number, "a number like 0.5, 1e-3 or .inf"),
    "bool": (_core_bool, "true or false"),
    "null": (_core_null, "null, ~ or nothing"),
}
_KIND_NAMES = {ScalarNode: "a scalar", SequenceNode: "a list", MappingNode: "a mapping"}
_KIND_TAGS = {SequenceNode: "seq", MappingNode: "map"}
_KEY_HINT = "write keys as plain names, like `conv1:`"


def _tag_name(tag: str) -> str:
    """How the user wrote a tag: `!!int` rather than `tag:yaml.org,2002:int`."""
    return "!!" + tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else tag


class _Builder:
    """Turns a composed node graph into YamlMap / YamlSeq / scalars, counting every node."""

    def __init__(self, filename: str, root: Node, aliases: list[Mark]) -> None:
        self._filename = filename
        self._root = root
        self._aliases = _alias_slots(root, iter(aliases))
        self._count = 0
        self._active: set[int] = set()  # ids of the collections being built right now
        self._expanding: list[Mark] = []  # aliases being expanded, outermost first

    def build(self) -> object:
        return self._node(self._root, 1)

    def _loc(self, mark: Mark) -> Location:
        return _location(mark, self._filename)

    def _child(self, parent: Node, slot: int, node: Node, depth: int) -> tuple[object, Location]:
        """Build one child of `parent`; return it with the position where it is written."""
        alias = self._aliases.get((id(parent), slot))
        if alias is None:
            return self._node(node, depth), self._loc(node.start_mark)
        if id(node) in self._active:
            raise SpecError(
                "this alias refers to a node that contains it (a recursive alias)",
                self._loc(alias),
                hint="an alias can only repeat a node that is already complete",
            )
        self._expanding.append(alias)
        try:
            return self._node(node, depth), self._loc(alias)
        finally:
            self._expanding.pop()

    def _node(self, node: Node, depth: int) -> object:
        self._count += 1
        if self._count > MAX_NODES:
            raise self._too_many(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self._check_collection_tag(node)
        if depth > MAX_DEPTH:
            raise _too_deep(self._loc(self._expanding[0] if self._expanding else node.start_mark))
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, depth)
            return self._mapping(node, depth)
        finally:
            self._active.discard(id(node))

    def _too_many(self, node: Node) -> SpecError:
        if self._expanding:
            return SpecError(
                f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)",
                self._loc(self._expanding[0]),
                hint="aliases are copied each time they are used; repeat less deeply",
            )
        return SpecError(
            f"the document has more than {MAX_NODES} nodes; a spec is far smaller",
            self._loc(node.start_mark),
        )

    # --- tags and scalars

    def _disallowed_tag(self, node: Node) -> SpecError:
        return SpecError(
            f"tag {_tag_name(node.tag)} is not allowed: netspec reads plain YAML only",
            self._loc(node.start_mark),
            hint=f"remove the tag (the standard ones allowed are {_ALLOWED_TAGS})",
        )

    def _check_collection_tag(self, node: Node) -> None:
        tag = node.tag
        if tag is _UNTAGGED or tag == _TAG_PREFIX + _KIND_TAGS[type(node)]:
            return
        name = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else None
        if name in _SCALAR_TAGS or name in _KIND_TAGS.values():
            raise SpecError(
                f"tag {_tag_name(tag)} cannot be used on {_KIND_NAMES[type(node)]}",
                self._loc(node.start_mark),
                hint="remove the tag",
            )
        raise self._disallowed_tag(node)

    def _scalar(self, node: ScalarNode) -> object:
        text, tag = node.value, node.tag
        if tag is _UNTAGGED:
            # Quoted and block scalars are always text; only plain ones are resolved.
            return text if node.style else self._resolved(node, resolve_scalar, text)
        name = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else None
        if name in _KIND_TAGS.values():
            raise SpecError(
                f"tag {_tag_name(tag)} cannot be used on a scalar",
                self._loc(node.start_mark),
                hint="remove the tag",
            )
        if name not in _SCALAR_TAGS:
            raise self._disallowed_tag(node)
        convert, expected = _SCALAR_TAGS[name]
        value = self._resolved(node, convert, text)
        if value is _NOT_FOUND:
            raise SpecError(
                f"{_tag_name(tag)} needs {expected}, not {text!r}",
                self._loc(node.start_mark),
                hint=f"fix the value or remove the {_tag_name(tag)} tag",
            )
        return value

    def _resolved(self, node: ScalarNode, convert: object, text: str) -> object:
        try:
            return convert(text)
        except ValueError:  # an integer beyond Python's digit limit
            raise SpecError(
                "this number has too many digits",
                self._loc(node.start_mark),
                hint="quote it if it is meant as text",
            ) from None

    # --- collections

    def _sequence(self, node: SequenceNode, depth: int) -> YamlSeq:
        result = YamlSeq()
        result.loc = self._loc(node.start_mark)
        for index, item in enumerate(node.value):
            value, where = self._child(node, index, item, depth + 1)
            result.append(value)
            result.item_locs.append(where)
        return result

    def _mapping(self, node: MappingNode, depth: int) -> YamlMap:
        """Keys in written order; a merge (`<<`) inserts its keys where the `<<` is written."""
        entries: list[tuple[str, Location, object, Location] | list[YamlMap]] = []
        seen: dict[str, Location] = {}
        merge_at: Location | None = None
        for index, (key_node, value_node) in enumerate(node.value):
            if _is_merge_key(key_node):
                where = self._loc(key_node.start_mark)
                if merge_at is not None:
                    raise _duplicate("<<", merge_at, where)
                merge_at = where
                value, value_loc = self._child(node, 2 * index + 1, value_node, depth + 1)
                entries.append(self._merge_sources(value, value_loc))
                continue
            key, key_loc = self._key(node, 2 * index, key_node, depth)
            if key in seen:
                raise _duplicate(key, seen[key], key_loc)
            seen[key] = key_loc
            value, value_loc = self._child(node, 2 * index + 1, value_node, depth + 1)
            entries.append((key, key_loc, value, value_loc))
        return _assemble(entries, self._loc(node.start_mark))

    def _key(self, parent: MappingNode, slot: int, node: Node, depth: int) -> tuple[str, Location]:
        alias = self._aliases.get((id(parent), slot))
        where = self._loc(alias or node.start_mark)
        if not isinstance(node, ScalarNode):
            raise SpecError(
                f"a mapping key must be a name, not {_KIND_NAMES[type(node)]}",
                where,
                hint=_KEY_HINT,
            )
        value, where = self._child(parent, slot, node, depth + 1)
        if isinstance(value, str):
            return value, where
        if isinstance(value, int) and not isinstance(value, bool):
            return node.value, where  # as written: `01:` is the key "01"
        if not node.value:
            raise SpecError("empty key: a mapping key needs a name", where, hint=_KEY_HINT)
        kind = "a boolean" if isinstance(value, bool) else "null" if value is None else "a number"
        raise SpecError(
            f"key `{node.value}` is read as {kind}, not as a name",
            where,
            hint=f"quote it if you mean the text: '{node.value}':",
        )

    def _merge_sources(self, value: object, where: Location) -> list[YamlMap]:
        """The mappings a `<<` merges, earliest (strongest) first."""
        if isinstance(value, YamlMap):
            return [value]
        if isinstance(value, YamlSeq):
            for item, item_loc in zip(value, value.item_locs, strict=True):
                if not isinstance(item, YamlMap):
                    raise _bad_merge(item_loc)
            return list(value)
        raise _bad_merge(where)


def _is_merge_key(node: Node) -> bool:
    return (
        isinstance(node, ScalarNode)
        and node.tag is _UNTAGGED
        and not node.style
        and node.value == "<<"
    )


def _assemble(
    entries: list[tuple[str, Location, object, Location] | list[YamlMap]], loc: Location
) -> YamlMap:
    """Explicit keys win over merged ones; among merged mappings the first one wins."""
    explicit = {entry[0] for entry in entries if isinstance(entry, tuple)}
    result = YamlMap()
    result.loc = loc
    for entry in entries:
        if isinstance(entry, tuple):
            key, key_loc, value, value_loc = entry
            _put(result, key, value, key_loc, value_loc)
            continue
        for source in entry:
            for key, value in source.items():
                if key not in explicit and key not in result:
                    _put(result, key, value, source.key_locs.get(key), source.value_locs.get(key))
    return result


def _put(
    mapping: YamlMap, key: str, value: object, key_loc: Location | None, value_loc: Location | None
) -> None:
    mapping[key] = value
    if key_loc is not None:
        mapping.key_locs[key] = key_loc
    if value_loc is not None:
        mapping.value_locs[key] = value_loc


def _duplicate(key: str, first: Location, second: Location) -> SpecError:
    return SpecError(
        f"duplicate key '{key}' (first defined at line {first.line}): "
        "YAML would silently keep the last one; rename one of them",
        second,
    )


def _bad_merge(where: Location) -> SpecError:
    return SpecError(
        "`<<` merges a mapping or a list of mappings",
        where,
        hint="write `<<: *defaults` where `defaults` is an anchored mapping",
    )


def _alias_slots(root: Node, aliases: Iterator[Mark]) -> dict[tuple[int, int], Mark]:
    """Which child slots of which collections are aliases, with the alias's own position.

    The composer replaces `*name` by the anchored node itself, losing where the alias was written.
    Walking the graph in document order without expanding, a node met a second time is exactly
    the next alias event, so the positions recorded from the event stream can be matched back.
    A slot is a sequence index, or 2*i (key) / 2*i+1 (value) for the i-th mapping entry.
    """
    slots: dict[tuple[int, int], Mark] = {}
    seen = {id(root)}

    def walk(node: Node) -> None:
        for slot, child in _children(node):
            if id(child) in seen:
                mark = next(aliases, None)
                if mark is not None:
                    slots[(id(node), slot)] = mark
            else:
                seen.add(id(child))
                walk(child)

    walk(root)
    return slots


def _children(node: Node) -> Iterator[tuple[int, Node]]:
    if isinstance(node, SequenceNode):
        yield from enumerate(node.value)
    elif isinstance(node, MappingNode):
        for index, (key, value) in enumerate(node.value):
            yield 2 * index, key
            yield 2 * index + 1, value
