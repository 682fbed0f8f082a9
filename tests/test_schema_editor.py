"""The JSON Schema of `netspec schema` (netspec/schema.py) as editors use it.

Two references judge it: netspec itself (a spec the schema flags must be one netspec rejects,
at the same line; every spec netspec accepts must pass), and the real yaml-language-server,
driven over stdio by pygls's language client, for diagnostics and completion as an editor
shows them. The Python half runs everywhere; the server half needs node and the npm package
(`.ci/run` installs it into .ci/node; NETSPEC_YAML_LANGUAGE_SERVER names another copy) and is
skipped, saying why, without them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lsprotocol import types as lsp

import netspec
from netspec.compiled import compile_with
from netspec.layers import REGISTRY
from netspec.load import load_file, load_yaml
from netspec.schema import OPTIMIZER_OPTIONS, BlockInfo, json_schema, spec_blocks
from netspec.spec import ROW_OPTIONS, SpecModel
from netspec.train.config import TrainingConfig, load_training_config

from .conftest import ROOT, SPECS

SERVER_VERSION = "1"
"""The yaml-language-server major version .ci/run installs (2.x needs node >= 22)."""
ONE_SERVER = pytest.mark.xdist_group("yaml-language-server")
"""The tests that use the server run in one pytest-xdist worker, which starts it once."""


def as_json(data: Any) -> Any:
    """Loaded YAML (netspec's YAML 1.2 reader) as the JSON values a schema validates."""
    return json.loads(json.dumps(data))


@functools.cache
def validator(blocks: tuple[tuple[str, tuple[str, ...]], ...] | None = None) -> Any:
    schema = json_schema(None if blocks is None else {n: BlockInfo(a) for n, a in blocks})
    return jsonschema.Draft202012Validator(schema)


def validators_for(data: Any) -> list[Any]:
    """The schema for all specs, and the one `netspec schema SPEC` writes for this spec."""
    blocks = tuple((name, info.args) for name, info in spec_blocks(data).items())
    return [validator(), validator(blocks)]


def schema_errors(text: str) -> list[Any]:
    data = as_json(load_yaml(text, "spec.yaml"))
    return [e for v in validators_for(data) for e in v.iter_errors(data)]


def netspec_error(text: str) -> netspec.SpecError | None:
    """What netspec says about a spec: its analysis, then its `training:` section."""
    try:
        compile_with(text, None)
        load_training_config(load_yaml(text, "spec.yaml"))  # type: ignore[arg-type]
    except netspec.SpecError as error:
        return error
    return None


# ---- the schema for all specs --------------------------------------------------------------


def test_making_the_schema_imports_no_jax() -> None:
    code = "import sys, netspec.schema; netspec.schema.json_schema(); print('jax' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_the_schema_is_draft_2020_12_and_covers_every_spec_key() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == set(SpecModel.model_fields)
    training = schema["properties"]["training"]["properties"]
    assert set(training) == set(TrainingConfig.model_fields)
    assert set(schema["$defs"]["Defaults"]["properties"]) == set(REGISTRY)


def test_the_optimizer_options_are_optax_arguments() -> None:
    from netspec.train.config import OPTIMIZERS, optimizer_arguments  # imports optax

    assert set(OPTIMIZER_OPTIONS) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        assert OPTIMIZER_OPTIONS[name] == tuple(optimizer_arguments(name)), name


SPEC_FILES = sorted(SPECS.glob("*.yaml")) + sorted((ROOT / "examples").glob("*/*.yaml"))


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_every_zoo_and_example_spec_passes(path: Path) -> None:
    data = as_json(load_file(path))
    for v in validators_for(data):
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in v.iter_errors(data)]
        assert errors == []


def yaml_blocks(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    yield from re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)


def placeholder(value: Any) -> bool:
    """`...` where a doc leaves part of a spec out (`layers: [...]`, `blocks: {...}`)."""
    if isinstance(value, dict):
        return "..." in value or any(placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(placeholder(v) for v in value)
    return value == "..."


def test_the_specs_and_fragments_in_the_docs_pass() -> None:
    """Every ```yaml block of the docs and READMEs: a whole spec against the schema, a
    fragment (`training:`, `blocks:`, a list of rows) against the part it is of."""
    schema = json_schema()
    defs = schema["$defs"]

    def check(value: Any, part: dict[str, Any], where: str) -> None:
        errors = list(jsonschema.Draft202012Validator({**part, "$defs": defs}).iter_errors(value))
        assert not errors, f"{where}: {errors[0].message[:300]} at {list(errors[0].absolute_path)}"

    documents = [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    documents += (ROOT / "examples").glob("*/README.md")
    checked = 0
    for path in documents:
        for index, text in enumerate(yaml_blocks(path)):
            where = f"{path.relative_to(ROOT)} block {index + 1}"
            try:
                data = as_json(load_yaml(text, where))
            except netspec.SpecError:  # an excerpt cut at `...` (YAML's document end)
                continue
            if isinstance(data, list):
                for row in data:
                    if not placeholder(row):
                        check(row, {"$ref": "#/$defs/TableRow"}, where)
                        checked += 1
                continue
            if {"name", "input", "layers"} <= set(data) and not placeholder(data):
                check(data, schema, where)
                checked += 1
            for key, value in data.items():
                if not placeholder(value):
                    check(value, schema["properties"][key], f"{where}: {key}")
                    checked += 1
    assert checked >= 20


def test_generated_specs_that_netspec_accepts_pass() -> None:
    """tests/specgen.py's specs (as written and with mistakes): the schema flags none that
    netspec compiles, and does flag some of the ones it rejects."""
    from .specgen import Writer, generate

    accepted = flagged = 0
    for seed in range(40):
        for spec in (Writer(seed).write(), generate(seed)):
            try:
                data = as_json(load_yaml(spec.text, "spec.yaml"))
            except netspec.SpecError:
                continue
            errors = [e for v in validators_for(data) for e in v.iter_errors(data)]
            try:
                compile_with(spec.text, spec.overrides)
            except netspec.SpecError:
                flagged += bool(errors)
                continue
            accepted += 1
            assert not errors, (
                f"seed {seed}: {list(errors[0].absolute_path)}: {errors[0].message[:200]}\n"
                + spec.text
            )
    assert accepted >= 40 and flagged >= 5


@dataclass(frozen=True)
class Typo:
    """A spec with one mistake (`bad`, written on one line of `text`), where the schema
    must flag it (`path`), and the same spec corrected (`bad` -> `good`)."""

    id: str
    text: str
    bad: str
    good: str
    path: tuple[Any, ...]

    @property
    def line(self) -> int:
        """The line (1-based) `bad` is written on."""
        (number,) = [i for i, line in enumerate(self.text.splitlines(), 1) if self.bad in line]
        return number

    @property
    def fixed(self) -> str:
        return self.text.replace(self.bad, self.good)


def spec(head: str = "", rows: str = "") -> str:
    return f"name: t\ninput: [16, 16, 3]\n{head}layers:\n  - c1: conv 3x3 8 same\n{rows}"


TYPOS = [
    Typo(
        "type cnov",
        spec(rows="  - c2: {type: cnov, kernel: 3, filters: 8}\n"),
        "cnov",
        "conv",
        ("layers", 1, "c2", "type"),
    ),
    Typo(
        "kernl",
        spec(rows="  - c2: {type: conv, kernl: 3, filters: 8}\n"),
        "kernl",
        "kernel",
        ("layers", 1, "c2"),
    ),
    Typo(
        "activaton",
        spec(
            rows="  - c2:\n      type: conv\n      kernel: 3\n      filters: 8\n"
            "      activaton: relu\n"
        ),
        "activaton",
        "activation",
        ("layers", 1, "c2"),
    ),
    Typo(
        "bias no",
        spec(rows="  - c2: {type: conv, kernel: 3, filters: 8, bias: no}\n"),
        "bias: no",
        "bias: false",
        ("layers", 1, "c2", "bias"),
    ),
    Typo(
        "if yes",
        spec(rows="  - c2: {type: relu, if: yes}\n"),
        "if: yes",
        "if: true",
        ("layers", 1, "c2", "if"),
    ),
    Typo(
        "optimiser",
        spec(head="training:\n  optimiser: adam\n"),
        "optimiser",
        "optimizer",
        ("training",),
    ),
    Typo(
        "epochs ten",
        spec(head="training:\n  epochs: ten\n"),
        "epochs: ten",
        "epochs: 10",
        ("training", "epochs"),
    ),
    Typo(
        "adam momentum",
        spec(head="training:\n  optimizer: {name: adam, momentum: 0.9}\n"),
        "momentum",
        "b1",
        ("training", "optimizer"),
    ),
    Typo(
        "defaults kernl",
        spec(head="defaults:\n  conv: {kernl: 3}\n"),
        "kernl",
        "kernel",
        ("defaults", "conv"),
    ),
    Typo(
        "compact cnov",
        spec(rows="  - c2: cnov 3x3 8\n"),
        "cnov",
        "conv",
        ("layers", 1, "c2"),
    ),
    Typo(
        "expect in a sequence",
        spec(rows="  - c2: [a: relu, b: {type: relu, expect: 16x16x8}]\n"),
        "expect: 16x16x8",
        "if: true",
        ("layers", 1, "c2", 1, "b", "expect"),
    ),
    Typo(
        "concat of one",
        spec(rows="  - c2: {concat: [conv 1x1 4]}\n"),
        "[conv 1x1 4]",
        "[conv 1x1 4, conv 1x1 4]",
        ("layers", 1, "c2", "concat"),
    ),
]


@pytest.mark.parametrize("typo", TYPOS, ids=lambda t: t.id)
def test_a_mistake_is_flagged_where_netspec_reports_it(typo: Typo) -> None:
    error = netspec_error(typo.text)
    assert error is not None and error.location is not None
    assert error.location.line == typo.line, error
    errors = schema_errors(typo.text)
    assert errors and {tuple(e.absolute_path) for e in errors} == {typo.path}
    assert netspec_error(typo.fixed) is None
    assert schema_errors(typo.fixed) == []


def test_a_misspelt_type_in_a_spec_with_blocks_needs_the_spec_schema() -> None:
    """With blocks the schema for all specs cannot tell `cnov` from a block; the schema of the
    spec (`netspec schema SPEC`) can, and checks a block's arguments in a mapping row."""
    head = "blocks:\n  unit:\n    args: [width]\n    layers: [conv 3x3 $width same]\n"
    for row, path in (
        ("  - c2: cnov 3x3 8\n", ["layers", 1, "c2"]),
        ("  - c2: {type: cnov}\n", ["layers", 1, "c2", "type"]),
        ("  - c2: {type: unit, widht: 8}\n", ["layers", 1, "c2"]),
    ):
        text = spec(head, row)
        assert netspec_error(text) is not None
        data = as_json(load_yaml(text, "spec.yaml"))
        general, specific = validators_for(data)
        assert list(general.iter_errors(data)) == []
        assert [list(e.absolute_path) for e in specific.iter_errors(data)] == [path]
    good = spec(head, "  - c2: {type: unit, width: 8}\n  - c3: unit 8\n")
    assert netspec_error(good) is None and schema_errors(good) == []


# ---- yaml-language-server ------------------------------------------------------------------


def server_command() -> list[str]:
    """The yaml-language-server to run, or a skip saying what is missing."""
    configured = os.environ.get("NETSPEC_YAML_LANGUAGE_SERVER")
    server = (
        Path(configured) if configured else ROOT / ".ci/node/node_modules/.bin/yaml-language-server"
    )
    if shutil.which("node") is None:
        pytest.skip("node is not installed: yaml-language-server needs it")
    if not server.exists():
        pytest.skip(
            f"no yaml-language-server at {server}: `npm install --no-save --prefix .ci/node "
            f"yaml-language-server@{SERVER_VERSION}` (as .ci/run does) or set "
            "NETSPEC_YAML_LANGUAGE_SERVER"
        )
    return [str(server), "--stdio"]


class YamlServer:
    """A yaml-language-server over stdio, through pygls's language client, configured the way
    an editor's `yaml.schemas` setting does it (the schema for every `*.yaml` of `folder`)."""

    def __init__(self, command: list[str], folder: Path, schema: Path) -> None:
        from pygls.lsp.client import LanguageClient

        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("netspec-tests", "1")
        self.folder = folder
        self.published: dict[str, asyncio.Future[list[lsp.Diagnostic]]] = {}
        self.settings = {
            "schemas": {schema.as_uri(): [f"{folder.as_posix()}/*.yaml"]},
            "validate": True,
            "completion": True,
            "hover": True,
            "schemaStore": {"enable": False},  # no network
            "yamlVersion": "1.2",
        }

        @self.client.feature(lsp.WORKSPACE_CONFIGURATION)
        def configuration(ls: Any, params: lsp.ConfigurationParams) -> list[Any]:
            return [self.settings if item.section == "yaml" else None for item in params.items]

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def publish(ls: Any, params: lsp.PublishDiagnosticsParams) -> None:
            future = self.published.get(params.uri)
            if future is not None and not future.done():
                future.set_result(list(params.diagnostics))

        self.run(self.client.start_io(*command))
        capabilities = lsp.ClientCapabilities(
            workspace=lsp.WorkspaceClientCapabilities(configuration=True),
            text_document=lsp.TextDocumentClientCapabilities(
                completion=lsp.CompletionClientCapabilities(
                    completion_item=lsp.ClientCompletionItemOptions(snippet_support=False)
                )
            ),
        )
        self.run(
            self.client.initialize_async(
                lsp.InitializeParams(
                    capabilities=capabilities, process_id=os.getpid(), root_uri=folder.as_uri()
                )
            )
        )
        self.client.initialized(lsp.InitializedParams())
        self.client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings={"yaml": self.settings})
        )
        self.count = 0
        # The settings arrive when the server asks for them: wait until a document is checked.
        for _ in range(50):
            if self.diagnostics("name: 5\n")[0]:
                break
        else:
            raise AssertionError("yaml-language-server never applied the schema")

    def run(self, work: Any, timeout: float = 30) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(work, timeout))

    def open(self, text: str) -> str:
        """Open a new document with `text`; its URI."""
        self.count += 1
        uri = (self.folder / f"doc{self.count}.yaml").as_uri()
        self.published[uri] = self.loop.create_future()
        item = lsp.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
        return uri

    def diagnostics(self, *texts: str) -> list[list[lsp.Diagnostic]]:
        """Each text's diagnostics; opened together, as the server waits 200 ms per document
        before it checks it."""
        uris = [self.open(text) for text in texts]
        return self.run(asyncio.gather(*(self.published[uri] for uri in uris)))

    def completion(self, text: str, line: int, character: int) -> set[str]:
        """The labels the server offers at (line, character), 1-based line."""
        uri = self.open(text)
        self.run(self.published[uri])
        params = lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=line - 1, character=character),
        )
        result = self.run(self.client.text_document_completion_async(params))
        items = result.items if isinstance(result, lsp.CompletionList) else result or []
        return {item.label for item in items}

    def close(self) -> None:
        try:
            self.run(self.client.shutdown_async(None), timeout=10)
            self.client.exit(None)
            self.run(self.client.stop(), timeout=10)
        finally:
            self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YamlServer]:
    command = server_command()
    folder = tmp_path_factory.mktemp("editor")
    schema = folder / "netspec.schema.json"
    schema.write_text(json.dumps(json_schema()), encoding="utf-8")
    running = YamlServer(command, folder, schema)
    try:
        yield running
    finally:
        running.close()


def lines_of(diagnostics: list[lsp.Diagnostic]) -> set[int]:
    return {d.range.start.line + 1 for d in diagnostics}


@pytest.fixture(scope="module")
def checked(server: YamlServer) -> dict[str, list[lsp.Diagnostic]]:
    """The server's diagnostics for every mistake, its correction and every zoo spec."""
    texts = {f"{typo.id}: bad": typo.text for typo in TYPOS}
    texts.update({f"{typo.id}: good": typo.fixed for typo in TYPOS})
    texts.update({path.name: path.read_text(encoding="utf-8") for path in SPEC_FILES})
    return dict(zip(texts, server.diagnostics(*texts.values()), strict=True))


@ONE_SERVER
@pytest.mark.parametrize("typo", TYPOS, ids=lambda t: t.id)
def test_the_editor_flags_a_mistake_on_its_line(
    checked: dict[str, list[lsp.Diagnostic]], typo: Typo
) -> None:
    found = checked[f"{typo.id}: bad"]
    assert lines_of(found) == {typo.line}, [(lines_of([d]), d.message) for d in found]
    assert checked[f"{typo.id}: good"] == []


@ONE_SERVER
@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_the_editor_accepts_every_zoo_and_example_spec(
    checked: dict[str, list[lsp.Diagnostic]], path: Path
) -> None:
    assert [(d.range.start.line + 1, d.message) for d in checked[path.name]] == []


@ONE_SERVER
def test_completion_in_a_mapping_row_offers_the_layer_fields(server: YamlServer) -> None:
    text = spec(rows="  - c2:\n      type: conv\n      \n")
    offered = server.completion(text, len(text.splitlines()), 6)
    fields = set(REGISTRY["conv"].params.model_fields)
    assert fields <= offered
    assert offered - fields <= {"window", *ROW_OPTIONS}
    assert "units" not in offered  # a dense field

    text = spec(rows="  - c2:\n      type: dense\n      \n")
    offered = server.completion(text, len(text.splitlines()), 6)
    assert set(REGISTRY["dense"].params.model_fields) <= offered and "kernel" not in offered


@ONE_SERVER
def test_completion_of_a_training_key_offers_the_training_options(server: YamlServer) -> None:
    text = spec(head="training:\n  epochs: 3\n  \n")
    offered = server.completion(text, text.splitlines().index("  ") + 1, 2)
    assert offered == set(TrainingConfig.model_fields) - {"epochs"}


@ONE_SERVER
def test_the_spec_schema_in_a_modeline_checks_block_names(
    server: YamlServer, tmp_path: Path
) -> None:
    """`netspec schema SPEC -o FILE` and `# yaml-language-server: $schema=FILE`: in a spec with
    blocks the misspelt block is flagged, and a mapping-row call completes its arguments."""
    head = "blocks:\n  unit:\n    args: [width, {stride: 1}]\n    layers: [conv 3x3 $width]\n"
    body = spec(head, "  - c2: unit 8\n  - c3: uint 8\n")
    path = tmp_path / "spec.schema.json"
    blocks = spec_blocks(load_yaml(body, "spec.yaml"))
    path.write_text(json.dumps(json_schema(blocks)), encoding="utf-8")
    text = f"# yaml-language-server: $schema={path.as_uri()}\n{body}"
    found, general = server.diagnostics(text, body)
    assert lines_of(found) == {text.splitlines().index("  - c3: uint 8") + 1}
    assert general == []  # the schema for all specs cannot tell

    text += "  - c4:\n      type: unit\n      \n"
    offered = server.completion(text, len(text.splitlines()), 6)
    assert {"width", "stride"} <= offered and "kernel" not in offered
