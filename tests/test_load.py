"""Tests for netspec.load: values follow the YAML 1.2 core schema, and every expected position is
counted in the test text itself (see `at`), never taken from the loader."""

from __future__ import annotations

import copy
import math
import os
import pickle
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec import load
from netspec.errors import Location, SpecError
from netspec.load import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    YamlMap,
    YamlSeq,
    key_location,
    load_file,
    load_yaml,
    locate,
)

FILE = "spec.yaml"
BACKENDS = [load._PyLoader] + ([load._CLoader] if load.CParser is not None else [])


@pytest.fixture(autouse=True, params=BACKENDS, ids=lambda loader: loader.__name__.strip("_"))
def backend(request, monkeypatch):
    """Run every test with libyaml's parser and with PyYAML's pure-Python one."""
    monkeypatch.setattr(load, "_LOADER", request.param)
    return request.param


def at(text: str, needle: str, occurrence: int = 1) -> Location:
    """Where the `occurrence`-th `needle` starts in `text`, counted by hand (1-based)."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Location(FILE, line, column)


def error_of(source: str | bytes) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_yaml(source, FILE)
    return info.value


# ---------------------------------------------------------------------------------------------
# Structure and locations


SPEC = """\
name: googlenet
input: [224, 224, 3]
layers:
  - conv1: conv 7x7/2 64
  - pool1:   maxpool 3x3/2
  - block:
      type: inception
      sizes: [64, 96]
"""


def test_mapping_and_nested_sequence_values():
    data = load_yaml(SPEC, FILE)
    assert data == {
        "name": "googlenet",
        "input": [224, 224, 3],
        "layers": [
            {"conv1": "conv 7x7/2 64"},
            {"pool1": "maxpool 3x3/2"},
            {"block": {"type": "inception", "sizes": [64, 96]}},
        ],
    }
    assert type(data) is YamlMap
    assert type(data["layers"]) is YamlSeq
    assert list(data) == ["name", "input", "layers"]


def test_mapping_locations():
    data = load_yaml(SPEC, FILE)
    assert data.loc == Location(FILE, 1, 1)
    assert data.key_locs == {
        "name": at(SPEC, "name"),
        "input": at(SPEC, "input"),
        "layers": at(SPEC, "layers"),
    }
    assert data.value_locs["name"] == at(SPEC, "googlenet")
    assert data.value_locs["input"] == at(SPEC, "[224")
    assert data.value_locs["layers"] == at(SPEC, "- conv1")
    assert key_location(data, "layers") == Location(FILE, 3, 1)


def test_sequence_locations():
    data = load_yaml(SPEC, FILE)
    shape = data["input"]
    assert shape.loc == at(SPEC, "[224")
    assert shape.item_locs == [at(SPEC, "224"), at(SPEC, "224", 2), at(SPEC, "3]")]
    layers = data["layers"]
    assert layers.loc == Location(FILE, 4, 3)
    assert layers.item_locs == [at(SPEC, "conv1"), at(SPEC, "pool1"), at(SPEC, "block")]
    pool = layers[1]
    assert pool.loc == at(SPEC, "pool1")
    assert pool.value_locs["pool1"] == at(SPEC, "maxpool")
    block = layers[2]["block"]
    assert block.loc == at(SPEC, "type")
    assert block.key_locs["sizes"] == Location(FILE, 8, 7)
    assert block["sizes"].item_locs == [at(SPEC, "64,"), at(SPEC, "96")]


def test_location_of_quoted_and_multiline_scalars():
    text = 'a: "quoted"\nb: plain\n  continued\nc: |\n  block\n'
    data = load_yaml(text, FILE)
    assert data == {"a": "quoted", "b": "plain continued", "c": "block\n"}
    assert data.value_locs["a"] == at(text, '"quoted"')  # at the quote
    assert data.value_locs["b"] == at(text, "plain")
    assert data.value_locs["c"] == at(text, "|")


def test_columns_count_characters_and_crlf_ends_lines():
    text = "name: café\r\nx: [é, 1]\r\n"
    data = load_yaml(text, FILE)
    assert data == {"name": "café", "x": ["é", 1]}
    assert data.key_locs["x"] == Location(FILE, 2, 1)
    assert data["x"].item_locs[1] == Location(FILE, 2, len("x: [é, ") + 1)


def test_utf8_bom_is_skipped():
    data = load_yaml(b"\xef\xbb\xbfname: net\n", FILE)
    assert data == {"name": "net"}
    assert data.key_locs["name"] == Location(FILE, 1, 1)


def test_str_and_bytes_give_the_same_result():
    assert load_yaml(SPEC, FILE) == load_yaml(SPEC.encode(), FILE)


def test_root_may_be_a_list_or_a_scalar():
    assert load_yaml("- 1\n- 2\n", FILE) == [1, 2]
    assert load_yaml("hello", FILE) == "hello"
    assert load_yaml("~", FILE) is None


# ---------------------------------------------------------------------------------------------
# Scalars: the YAML 1.2 core schema


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("", None),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("007", 7),
        ("0o17", 15),
        ("0x1F", 31),
        ("0xff", 255),
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        ("0.5", 0.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("+12.5e+2", 1250.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
    ],
)
def test_core_schema_scalars(written, expected):
    value = load_yaml(f"v: {written}\n", FILE)["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_nan():
    assert math.isnan(load_yaml("v: .nan", FILE)["v"])
    assert math.isnan(load_yaml("v: .NaN", FILE)["v"])


@pytest.mark.parametrize(
    "written",
    [
        "yes", "no", "on", "off", "y", "n", "Yes", "ON", "tRUE", "nULL",
        "1x1", "7x7/2", "1:30", "0b101", "1_000", "017a", "0o8", "0xG", "1e", "e3", ".", "+",
        "2001-12-14", "3a", ".Nan", "inf", "nan", "1,000", "conv 3x3 64",
    ],
)  # fmt: skip
def test_everything_else_is_a_string(written):
    assert load_yaml(f"v: {written}\n", FILE)["v"] == written


@pytest.mark.parametrize("written", ["'42'", '"true"', "'~'", '"1e-3"', "'0x1F'", "''"])
def test_quoted_scalars_are_strings(written):
    assert load_yaml(f"v: {written}\n", FILE)["v"] == written[1:-1]


def test_block_scalars_are_strings():
    assert load_yaml("v: |\n  42\nw: >\n  true\n", FILE) == {"v": "42\n", "w": "true\n"}


def test_huge_integer_is_an_error_not_a_crash():
    text = "v: " + "9" * 5000
    error = error_of(text)
    assert error.location == at(text, "9")
    assert "digits" in error.message


# ---------------------------------------------------------------------------------------------
# Tags


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("!!str 123", "123"),
        ("!!str true", "true"),
        ("!!str", ""),
        ('!!int "42"', 42),
        ("!!int 0x10", 16),
        ("!!float 1", 1.0),
        ("!!float '2.5'", 2.5),
        ("!!bool false", False),
        ("!!null ''", None),
        ("!!seq [1, 2]", [1, 2]),
        ("!!map {a: 1}", {"a": 1}),
    ],
)
def test_standard_tags_are_honoured(written, expected):
    value = load_yaml(f"v: {written}\n", FILE)["v"]
    assert value == expected
    assert type(value) is type(expected) or isinstance(value, type(expected))


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("!!int abc", "!!int needs a whole number"),
        ("!!int 1.5", "!!int needs a whole number"),
        ("!!float x", "!!float needs a number"),
        ("!!bool yes", "!!bool needs true or false"),
        ("!!null 0", "!!null needs null"),
        ("!!str [1]", "tag !!str cannot be used on a list"),
        ("!!int {a: 1}", "tag !!int cannot be used on a mapping"),
        ("!!seq abc", "tag !!seq cannot be used on a scalar"),
        ("!!map [1]", "tag !!map cannot be used on a list"),
    ],
)
def test_standard_tag_that_does_not_fit(written, fragment):
    text = f"v: {written}\n"
    error = error_of(text)
    assert fragment in error.message
    assert error.location == at(text, "!!")


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!python/object/new:os.system [ls]", "!!python/object/new:os.system"),
        ("!foo bar", "!foo"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!omap [a: 1]", "!!omap"),
        ("!!timestamp 2001-12-14", "!!timestamp"),
        ("!!merge <<", "!!merge"),
        ("!<tag:yaml.org,2002:python/none> ''", "!!python/none"),
    ],
)
def test_other_tags_are_refused(written, shown):
    text = f"layers:\n  - conv: {written}\n"
    error = error_of(text)
    assert error.message == f"tag {shown} is not allowed: netspec reads plain YAML only"
    assert error.location == at(text, "!")


def test_python_tags_never_run_code(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command) or 0)
    marker = tmp_path / "ran"
    text = f'run: !!python/object/apply:os.system ["echo hi > {marker}"]\n'
    error = error_of(text)
    assert "!!python/object/apply:os.system is not allowed" in error.message
    assert error.location == Location(FILE, 1, 6)
    assert calls == []
    assert not marker.exists()


def test_tag_on_root_and_on_a_key():
    assert error_of("!!python/object:os.system {}").location == Location(FILE, 1, 1)
    text = "a: 1\n!!python/name:os.system x: 2\n"
    assert error_of(text).location == at(text, "!!python")


# ---------------------------------------------------------------------------------------------
# Keys


def test_integer_keys_become_strings_as_written():
    data = load_yaml("1: a\n01: b\n0x1F: c\n", FILE)
    assert data == {"1": "a", "01": "b", "0x1F": "c"}
    assert all(isinstance(key, str) for key in data)


def test_quoted_and_tagged_keys_are_strings():
    assert load_yaml("'true': 1\n!!str 2: 2\n'~': 3\n", FILE) == {"true": 1, "2": 2, "~": 3}


@pytest.mark.parametrize(
    ("text", "needle", "fragment"),
    [
        ("a: 1\ntrue: 2\n", "true", "key `true` is read as a boolean"),
        ("a: 1\n~: 2\n", "~", "key `~` is read as null"),
        ("a: 1\n1.5: 2\n", "1.5", "key `1.5` is read as a number"),
        ("a: 1\n? [x, y]\n: 2\n", "[x", "a mapping key must be a name, not a list"),
        ("a: 1\n? {x: 1}\n: 2\n", "{x", "a mapping key must be a name, not a mapping"),
        ("a: &k [1]\n*k : 2\n", "*k", "a mapping key must be a name, not a list"),
    ],
)
def test_keys_that_are_not_names(text, needle, fragment):
    error = error_of(text)
    assert fragment in error.message
    assert error.location == at(text, needle)


def test_empty_key():
    error = error_of("a: 1\n?\n: 2\n")
    assert error.message == "empty key: a mapping key needs a name"
    assert error.location == Location(FILE, 2, 2)  # the empty key sits just after the `?`


def test_alias_as_a_key_is_fine_when_it_is_text():
    assert load_yaml("a: &k conv1\n*k : 2\n", FILE) == {"a": "conv1", "conv1": 2}


def test_duplicate_key_points_at_the_second_one():
    text = "layers:\n  conv1: a\n  pool1: b\n  conv1: c\n"
    error = error_of(text)
    assert error.message == (
        "duplicate key 'conv1' (first defined at line 2): "
        "YAML would silently keep the last one; rename one of them"
    )
    assert error.location == at(text, "conv1", 2)
    assert error.location == Location(FILE, 4, 3)


def test_duplicate_key_in_a_flow_mapping():
    text = "x: {a: 1, b: 2, a: 3}"
    error = error_of(text)
    assert error.message.startswith("duplicate key 'a' (first defined at line 1)")
    assert error.location == at(text, "a: 3")


def test_duplicate_key_after_int_conversion():
    text = "1: a\n'1': b\n"
    error = error_of(text)
    assert error.message.startswith("duplicate key '1'")
    assert error.location == Location(FILE, 2, 1)


# ---------------------------------------------------------------------------------------------
# Anchors, aliases and merge keys


MERGE = """\
base: &base
  kernel: 3
  stride: 1
  act: relu
conv:
  stride: 2
  <<: *base
  pad: same
"""


def test_merge_key_explicit_keys_win():
    data = load_yaml(MERGE, FILE)
    assert data["conv"] == {"stride": 2, "kernel": 3, "act": "relu", "pad": "same"}
    assert list(data["conv"]) == ["stride", "kernel", "act", "pad"]


def test_merged_keys_point_where_they_are_written():
    conv = load_yaml(MERGE, FILE)["conv"]
    assert conv.key_locs["kernel"] == at(MERGE, "kernel")
    assert conv.value_locs["kernel"] == at(MERGE, "3")
    assert conv.key_locs["stride"] == at(MERGE, "stride", 2)
    assert conv.value_locs["stride"] == at(MERGE, "2")


def test_explicit_key_after_merge_also_wins_without_duplicate_error():
    text = "a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 9\n"
    assert load_yaml(text, FILE)["b"] == {"x": 9, "y": 2}


def test_merge_of_a_list_of_mappings_first_wins():
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n"
    assert load_yaml(text, FILE)["c"] == {"x": 1, "y": 2, "z": 3}


def test_merge_of_an_inline_mapping():
    assert load_yaml("c: {<<: {x: 1}, y: 2}", FILE)["c"] == {"x": 1, "y": 2}


def test_quoted_merge_key_is_an_ordinary_key():
    assert load_yaml("'<<': 1", FILE) == {"<<": 1}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: 1\nb:\n  <<: 5\n", "5"),
        ("a: &a [1]\nb:\n  <<: *a\n", "1]"),  # a list, but its item is no mapping
        ("a: &a x\nb:\n  <<: *a\n", "*a\n"),
        ("a: &a {x: 1}\nb:\n  <<: [*a, 3]\n", "3]"),
    ],
)
def test_merge_of_something_else_is_an_error(text, needle):
    error = error_of(text)
    assert "`<<` merges a mapping or a list of mappings" in error.message
    assert error.location == at(text, needle)


def test_two_merge_keys_are_duplicates():
    text = "a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n"
    error = error_of(text)
    assert error.message.startswith("duplicate key '<<' (first defined at line 3)")
    assert error.location == Location(FILE, 4, 3)


def test_aliases_are_independent_copies_located_at_the_alias():
    text = "a: &x {k: [1, 2]}\nb: *x\n"
    data = load_yaml(text, FILE)
    assert data["a"] == data["b"] == {"k": [1, 2]}
    assert data["a"] is not data["b"]
    data["b"]["k"].append(3)
    assert data["a"] == {"k": [1, 2]}
    assert data.value_locs["b"] == at(text, "*x")
    assert data["b"].key_locs["k"] == at(text, "k")  # inside, where the anchor's content is written


def test_undefined_alias():
    text = "a: 1\nb: *nope\n"
    error = error_of(text)
    assert error.message.startswith("invalid YAML")
    assert "`&name`" in error.hint
    assert error.location == at(text, "*nope")


def test_anchor_defined_twice():
    text = "a: &x 1\nb: &x 2\nc: *x\n"
    error = error_of(text)
    assert "already used at line 1" in error.message
    assert error.location == at(text, "&x", 2)


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_alias_bomb_is_stopped_quickly():
    # Nodes built in order: root 1; then each key (1) and list: a=10, b=91, c=820, d=7381,
    # e=66430 (74738 so far); f's key and list (74740), then f's first *e would add 66430 more.
    start = time.perf_counter()
    error = error_of(BOMB)
    assert time.perf_counter() - start < 5
    assert error.message == f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)"
    assert error.location == at(BOMB, "*e")
    assert error.location.line == 6


def test_many_nodes_without_aliases(monkeypatch):
    monkeypatch.setattr(load, "MAX_NODES", 10)
    text = "x: [1, 2, 3, 4, 5, 6, 7, 8, 9]"
    error = error_of(text)
    assert "more than 10 nodes" in error.message
    assert error.location == at(text, "8")  # root, key, list, 1..7 = 10; 8 is the 11th


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &x [1, *x]\n", "*x"),
        ("a: &m\n  self: *m\n", "*m"),
        ("a: &m\n  deeper: [{b: *m}]\n", "*m"),
        ("a: &m\n  <<: *m\n", "*m"),
    ],
)
def test_recursive_alias(text, needle):
    error = error_of(text)
    assert "recursive alias" in error.message
    assert error.location == at(text, needle)


def test_deep_nesting_via_an_alias_points_at_the_alias():
    levels = MAX_DEPTH - 1  # under the root mapping this is exactly MAX_DEPTH deep
    text = f"a: &a {'[' * levels}{']' * levels}\nb: [*a]\n"
    assert load_yaml(f"a: &a {'[' * levels}{']' * levels}\n", FILE)
    error = error_of(text)
    assert error.message == f"nested more than {MAX_DEPTH} levels deep"
    assert error.location == at(text, "*a")


# ---------------------------------------------------------------------------------------------
# Nesting depth


def test_nesting_up_to_the_limit_is_fine():
    text = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    data = load_yaml(text, FILE)
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == [1]


def test_flow_nesting_past_the_limit():
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    error = error_of(text)
    assert error.message == "nested more than 64 levels deep"
    assert error.location == Location(FILE, 1, MAX_DEPTH + 1)


def test_block_nesting_past_the_limit():
    text = "- " * (MAX_DEPTH + 1) + "x\n"
    error = error_of(text)
    assert error.message == "nested more than 64 levels deep"
    assert error.location == Location(FILE, 1, 2 * MAX_DEPTH + 1)


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_absurd_nesting_is_an_error_not_a_crash(opener):
    start = time.perf_counter()
    error = error_of(opener * 100_000)
    assert time.perf_counter() - start < 10
    assert "nested more than 64 levels deep" in error.message


def test_recursion_error_becomes_a_spec_error(monkeypatch):
    def explode(*args):
        raise RecursionError

    monkeypatch.setattr(load, "_compose", explode)
    error = error_of("a: 1")
    assert "nested too deeply" in error.message
    assert error.location == Location(FILE, 1, 1)


# ---------------------------------------------------------------------------------------------
# Input checks


def test_invalid_utf8_points_at_the_bad_byte():
    data = b"name: net\nlayers:\n  - conv1: caf\xe9 noir\n"
    error = error_of(data)
    assert "must be UTF-8 text" in error.message
    assert "0xE9" in error.message
    assert error.location == Location(FILE, 3, len("  - conv1: caf") + 1)


def test_invalid_utf8_column_counts_characters_before_it():
    error = error_of("a: é".encode() + b"\xff")
    assert error.location == Location(FILE, 1, 5)


def test_invalid_utf8_after_a_bom():
    error = error_of(b"\xef\xbb\xbfab\xc3")
    assert error.location == Location(FILE, 1, 3)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        b"a: 1\nb: \x00\n",
        bytes(range(1, 32)) * 4,
    ],
)
def test_binary_file(data):
    error = error_of(data)
    assert "looks like a binary file, not YAML" in error.message
    assert error.location == Location(FILE, 1, 1)


def test_utf16_file():
    error = error_of("a: 1\n".encode("utf-16"))
    assert "UTF-16" in error.message
    assert "must be UTF-8 text" in error.message


def test_stray_control_character_is_located():
    text = "a: 1\nb: x\x07y\n"
    error = error_of(text)
    assert "U+0007 is not allowed" in error.message
    assert error.location == at(text, "\x07")


@pytest.mark.parametrize(
    "source",
    ["", b"", "   \n\n\t\n", "# just a comment\n\n# and another\n", "\ufeff", "---\n", "--- # c\n"],
)
def test_empty_file(source):
    error = error_of(source)
    assert error.message.startswith("file is empty: expected a mapping with")
    assert "`name`, `input` and `layers`" in error.message
    assert error.location == Location(FILE, 1, 1)


def test_too_large():
    error = error_of(b"#" * (MAX_BYTES + 1))
    assert "more than" in error.message
    assert str(MAX_BYTES) in error.message
    assert error.location == Location(FILE, 1, 1)


def test_largest_allowed_size_is_fine(monkeypatch):
    monkeypatch.setattr(load, "MAX_BYTES", 100)
    assert load_yaml(b"a: 1\n#" + b"#" * 94, FILE) == {"a": 1}
    assert "more than the 100 bytes" in error_of(b"a: 1\n#" + b"#" * 95).message


# ---------------------------------------------------------------------------------------------
# Syntax errors and documents


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a:\n  b: 1\n c: 2\n", 3, 2),  # bad indentation: ` c` is neither under `a` nor `b`
        ("a: [1, 2\nb: 3\n", 2, 2),  # unclosed bracket, found out at the next `:`
        ("a: b: c\n", 1, 5),  # a second `: ` on one line
        ("a: 'open\n", 2, 1),  # unclosed quote, found out at the end
        ("a: {x: 1\n", 2, 1),  # unclosed brace, found out at the end
    ],
)
def test_syntax_error_location(text, line, column):
    error = error_of(text)
    assert error.message.startswith("invalid YAML: ")
    assert error.location == Location(FILE, line, column)


def test_syntax_error_message_names_the_context_and_a_fix():
    error = error_of("a: [1, 2\nb: 3\n")
    assert "in the list that starts at line 1, column 4" in error.message
    assert "`]`" in error.hint


@pytest.mark.parametrize(
    ("text", "marker", "hint"),
    [
        ("a: {x: 1\n", "{", "`}`"),
        ("a: 'open\n", "'", "close the quoted string"),
        ('a: "open\n', '"', "close the quoted string"),
    ],
)
def test_unclosed_bracket_or_quote_is_named(text, marker, hint):
    error = error_of(text)
    where = at(text, marker)
    assert f"starts at line {where.line}, column {where.column}" in error.message
    assert hint in error.hint


def test_tab_indentation_hint():
    error = error_of("a:\n\tb: 1\n")
    assert error.location == Location(FILE, 2, 1)
    assert "tabs" in error.hint


def test_two_documents_point_at_the_second():
    text = "name: a\n---\nname: b\n"
    error = error_of(text)
    assert "second YAML document" in error.message
    assert error.location == Location(FILE, 2, 1)


def test_explicit_single_document_is_fine():
    assert load_yaml("---\nname: a\n...\n", FILE) == {"name": "a"}


def test_document_after_an_end_marker():
    text = "name: a\n...\nname: b\n"
    assert error_of(text).location == Location(FILE, 3, 1)


# ---------------------------------------------------------------------------------------------
# locate / key_location


def test_locate_nested_path():
    data = load_yaml(SPEC, FILE)
    assert locate(data, ()) == Location(FILE, 1, 1)
    assert locate(data, ("layers",)) == at(SPEC, "- conv1")
    assert locate(data, ("layers", 2)) == at(SPEC, "block")
    assert locate(data, ("layers", 2, "block", "sizes", 1)) == at(SPEC, "96")
    assert locate(data, ("input", 2)) == at(SPEC, "3]")


def test_locate_missing_key_gives_the_mapping():
    data = load_yaml(SPEC, FILE)
    block = data["layers"][2]["block"]
    assert locate(data, ("layers", 2, "block", "stride")) == block.loc
    assert locate(data, ("layers", 2, "block", "stride")) == at(SPEC, "type")
    assert locate(data, ("nope",)) == data.loc


def test_locate_outside_known_territory_gives_the_deepest_node():
    data = load_yaml(SPEC, FILE)
    assert locate(data, ("layers", 7, "x")) == data.value_locs["layers"]
    assert locate(data, ("name", 0)) == at(SPEC, "googlenet")
    assert locate(data, ("input", "x")) == at(SPEC, "[224")
    assert locate(data, ("input", -1)) == at(SPEC, "[224")


def test_locate_follows_an_alias_to_where_it_is_written():
    text = "a: &x {k: 1}\nb: *x\n"
    data = load_yaml(text, FILE)
    assert locate(data, ("b",)) == at(text, "*x")
    assert locate(data, ("b", "k")) == at(text, "1")


def test_locate_on_data_built_in_code():
    assert locate({"a": [1]}, ("a", 0)) is None
    assert locate(YamlMap(a=1), ("a",)) is None
    data = load_yaml("a: 1\n", FILE)
    data["b"] = {"c": 2}  # added later by code: no location of its own
    assert locate(data, ("b", "c")) == data.loc


def test_key_location():
    data = load_yaml(SPEC, FILE)
    assert key_location(data, "input") == Location(FILE, 2, 1)
    assert key_location(data, "missing") is None
    assert key_location(YamlMap(a=1), "a") is None


# ---------------------------------------------------------------------------------------------
# YamlMap / YamlSeq built in code


def test_containers_built_in_code_have_empty_locations():
    mapping = YamlMap({"a": 1}, b=2)
    assert mapping == {"a": 1, "b": 2}
    assert (mapping.loc, mapping.key_locs, mapping.value_locs) == (None, {}, {})
    sequence = YamlSeq([1, 2])
    assert sequence == [1, 2]
    assert (sequence.loc, sequence.item_locs) == (None, [])
    assert YamlMap() == {} and YamlSeq() == []


def test_loaded_containers_survive_copy_and_pickle():
    data = load_yaml(SPEC, FILE)
    for clone in (copy.deepcopy(data), pickle.loads(pickle.dumps(data))):
        assert clone == data
        assert clone.key_locs == data.key_locs
        assert clone["layers"].item_locs == data["layers"].item_locs


# ---------------------------------------------------------------------------------------------
# load_file


def test_load_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_bytes(b"name: net\ninput: [1]\n")
    data = load_file(path)
    assert data == {"name": "net", "input": [1]}
    assert data.value_locs["input"] == Location(str(path), 2, 8)
    assert load_file(str(path)) == data


def test_load_file_errors_carry_the_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\na: 2\n")
    with pytest.raises(SpecError) as info:
        load_file(path)
    assert info.value.location == Location(str(path), 2, 1)
    assert str(info.value).startswith(f"{path}:2:1: duplicate key 'a'")


def test_load_file_missing(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(SpecError) as info:
        load_file(path)
    assert info.value.message == f"spec file '{path}' does not exist"
    assert info.value.location is None


def test_load_file_directory(tmp_path):
    with pytest.raises(SpecError) as info:
        load_file(tmp_path)
    assert "is a directory" in info.value.message
    assert info.value.location is None


def test_load_file_too_large(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_BYTES + 100))
    with pytest.raises(SpecError) as info:
        load_file(path)
    assert "more than" in info.value.message


# ---------------------------------------------------------------------------------------------
# Properties

names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=True)
    | names
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(names, documents, min_size=1, max_size=5), flow=st.booleans())
def test_round_trip_of_dumped_data(data, flow):
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False)
    loaded = load_yaml(text, FILE)
    assert loaded == data
    # Every key is written where its location says.
    lines = text.split("\n")
    for key, where in loaded.key_locs.items():
        assert lines[where.line - 1][where.column - 1 :].lstrip("'\"").startswith(key)


yaml_soup = st.lists(
    st.sampled_from([*"ab01 :-[]{},&*!|>'\"#\n\t?.~<%@`\\\u00e9", "---", "<<", "!!str"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=yaml_soup)
def test_any_text_gives_data_or_a_located_spec_error(text):
    try:
        load_yaml(text, FILE)
    except SpecError as error:
        assert error.location is not None
        assert error.location.line >= 1 and error.location.column >= 1


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_give_data_or_a_located_spec_error(data):
    try:
        load_yaml(data, FILE)
    except SpecError as error:
        assert error.location is not None
