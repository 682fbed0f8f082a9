"""`netspec lsp` over stdio, driven by a small JSON-RPC client the way an editor drives it.

One server process serves the whole module (`python -X importtime -m netspec lsp`: its stderr
then lists every module it imports, so the last test can check that JAX never was).
References are independent of the code: the error's column is found in the text, layer fields
come from the registry's params models, and GoogLeNet's numbers from the paper's Table 1.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netspec.layers import ALIASES, REGISTRY
from netspec.spec import ROW_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
pytestmark = pytest.mark.xdist_group("test_lsp.py")  # one server for the module's tests

TINY = """name: tiny
input: 32x32x3
vars: {width: 16, num_classes: 10}
layers:
  - c1: cnov 3x3 $width
  - flatten
  - dense $num_classes
"""


class Client:
    """A language client over a subprocess's stdin/stdout (LSP base protocol framing)."""

    def __init__(self, command: list[str]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (open while the server runs)
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )
        self.lock = threading.Condition()
        self.responses: dict[int, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.next_id = 0
        self.reader = threading.Thread(target=self.read_forever, daemon=True)
        self.reader.start()

    def read_forever(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            message = json.loads(stream.read(int(headers["content-length"])))
            if "method" in message and "id" in message:  # a request from the server
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            with self.lock:
                if "id" in message:
                    self.responses[message["id"]] = message
                else:
                    self.notifications.append(message)
                self.lock.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode("utf-8")
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def request(self, method: str, params: Any, timeout: float = 20) -> Any:
        """The result of a request; fails on an error response."""
        (result,) = self.requests([(method, params)], timeout)
        return result

    def requests(self, calls: list[tuple[str, Any]], timeout: float = 20) -> list[Any]:
        """Send every request at once, then return their results in order."""
        with self.lock:
            numbers = list(range(self.next_id + 1, self.next_id + 1 + len(calls)))
            self.next_id += len(calls)
        for number, (method, params) in zip(numbers, calls, strict=True):
            self.send({"jsonrpc": "2.0", "id": number, "method": method, "params": params})
        with self.lock:
            done = lambda: all(n in self.responses for n in numbers)  # noqa: E731
            assert self.lock.wait_for(done, timeout), [method for method, _ in calls]
            responses = [self.responses.pop(n) for n in numbers]
        for (method, _), response in zip(calls, responses, strict=True):
            assert "error" not in response, (method, response["error"])
        return [response["result"] for response in responses]

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, match: Callable[[dict[str, Any]], bool], start: int, timeout: float = 20):
        """The first notification at or after index `start` that `match`es."""
        with self.lock:
            found: list[dict[str, Any]] = []

            def seen() -> bool:
                found[:] = [n for n in self.notifications[start:] if match(n)]
                return bool(found)

            assert self.lock.wait_for(seen, timeout), "no matching notification"
            return found[0]

    def mark(self) -> int:
        with self.lock:
            return len(self.notifications)

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    # ---- LSP conveniences ----------------------------------------------------------------------

    def open(self, uri: str, text: str) -> list[dict[str, Any]]:
        """Open a document and return the diagnostics published for it."""
        start = self.mark()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        )
        return self.diagnostics(uri, start)

    def change(self, uri: str, version: int, text: str) -> list[dict[str, Any]]:
        """Replace the document's text (a full change) and return the new diagnostics."""
        start = self.mark()
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            },
        )
        return self.diagnostics(uri, start)

    def diagnostics(self, uri: str, start: int, timeout: float = 30) -> list[dict[str, Any]]:
        message = self.wait_for(
            lambda n: (
                n.get("method") == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri
            ),
            start,
            timeout,
        )
        return message["params"]["diagnostics"]

    def complete(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        result = self.request(
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        return [] if result is None else result["items"]

    def hover(self, uri: str, line: int, character: int) -> str | None:
        result = self.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        return None if result is None else result["contents"]["value"]

    def hints(self, uri: str, first: int = 0, last: int = 100_000) -> list[dict[str, Any]]:
        return self.request(
            "textDocument/inlayHint",
            {
                "textDocument": {"uri": uri},
                "range": {
                    "start": {"line": first, "character": 0},
                    "end": {"line": last, "character": 0},
                },
            },
        )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Client, dict[str, Any]]]:
    """The running server and its initialize result; shut down (exit code 0) at the end."""
    client = Client([sys.executable, "-X", "importtime", "-m", "netspec", "lsp"])
    result = client.request(
        "initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}, 60
    )
    client.notify("initialized", {})
    yield client, result
    client.request("shutdown", None)
    client.notify("exit", None)
    assert client.process.wait(10) == 0


@pytest.fixture
def client(server: tuple[Client, dict[str, Any]]) -> Iterator[Client]:
    """The module's client; each test must leave no traceback on the server's stderr."""
    before = len(server[0].stderr_text())
    yield server[0]
    assert "Traceback" not in server[0].stderr_text()[before:]


def uri_of(name: str) -> str:
    return (ROOT / "lsp-test" / name).as_uri()


def labels(items: list[dict[str, Any]]) -> set[str]:
    return {item["label"] for item in items}


def position_of(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """0-based (line, character) of the first `needle` in `text`, plus `offset` characters."""
    for number, line in enumerate(text.split("\n")):
        if needle in line:
            return number, line.index(needle) + offset
    raise AssertionError(f"{needle!r} is not in the text")


# ---- the protocol ----------------------------------------------------------------------------


def test_initialize_announces_its_features(server: tuple[Client, dict[str, Any]]) -> None:
    capabilities = server[1]["capabilities"]
    assert capabilities["hoverProvider"] is True
    assert capabilities["inlayHintProvider"] is not None
    assert "$" in capabilities["completionProvider"]["triggerCharacters"]
    sync = capabilities["textDocumentSync"]
    assert sync["openClose"] is True and sync["change"] in (1, 2)  # full or incremental
    assert server[1]["serverInfo"]["name"] == "netspec"


# ---- diagnostics -----------------------------------------------------------------------------


def test_misspelled_layer_type_is_located_with_its_hint_and_clears_after_the_fix(
    client: Client,
) -> None:
    uri = uri_of("tiny.yaml")
    (diagnostic,) = client.open(uri, TINY)
    line, character = position_of(TINY, "cnov")
    assert diagnostic["range"] == {
        "start": {"line": line, "character": character},
        "end": {"line": line, "character": character + len("cnov")},
    }
    assert diagnostic["severity"] == 1 and diagnostic["source"] == "netspec"
    assert "'cnov'" in diagnostic["message"]
    assert "did you mean 'conv'?" in diagnostic["message"]

    assert client.change(uri, 2, TINY.replace("cnov", "conv")) == []


def test_incremental_changes_are_applied_before_checking(client: Client) -> None:
    uri = uri_of("incremental.yaml")
    assert client.open(uri, TINY)
    line, character = position_of(TINY, "cnov")
    start = client.mark()
    edit = {
        "start": {"line": line, "character": character},
        "end": {"line": line, "character": character + 4},
    }
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": edit, "text": "conv"}],
        },
    )
    assert client.diagnostics(uri, start) == []


def test_independent_errors_are_all_published_in_line_order(client: Client) -> None:
    text = TINY.replace("  - flatten", "  - c2: conv 3x3 8 bias=no\n  - flatten")
    found = client.open(uri_of("two-errors.yaml"), text)
    assert [d["range"]["start"] for d in found] == [
        dict(zip(("line", "character"), position_of(text, "cnov"), strict=True)),
        dict(zip(("line", "character"), position_of(text, "bias=no", len("bias=")), strict=True)),
    ]
    assert "true or false" in found[1]["message"]


def test_an_unread_row_is_a_warning_where_it_is_written(client: Client) -> None:
    text = (
        "name: gate\ninput: 8x8x4\nlayers:\n  - a: conv 3x3 4 same\n"
        "  - unused: conv 1x1 4 from=a\n  - b: conv 1x1 4 from=a\n"
    )
    (diagnostic,) = client.open(uri_of("unread.yaml"), text)
    assert diagnostic["severity"] == 2  # a warning: the spec compiles
    assert diagnostic["range"]["start"]["line"] == position_of(text, "unused")[0]
    assert "never read" in diagnostic["message"]


def test_every_differing_expectation_is_reported_and_rows_keep_their_hints(
    client: Client,
) -> None:
    # 3x3 valid convolutions: 32 -> 30 -> 28; both expectations below are wrong.
    text = (
        "name: expect\ninput: 32x32x3\nlayers:\n  - a: conv 3x3 8 -> 31x31x8\n"
        "  - b: conv 3x3 8 -> 29x29x8\n"
    )
    uri = uri_of("expect.yaml")
    found = client.open(uri, text)
    assert [d["range"]["start"] for d in found] == [
        {"line": 3, "character": text.split("\n")[3].index("31x31x8")},
        {"line": 4, "character": text.split("\n")[4].index("29x29x8")},
    ]
    hints = {h["position"]["line"]: h["label"] for h in client.hints(uri)}
    assert hints[3].startswith("→ 30x30x8") and hints[4].startswith("→ 28x28x8")


# ---- completion ------------------------------------------------------------------------------


def test_completion_offers_layer_types_and_the_specs_blocks_at_a_rows_start(
    client: Client,
) -> None:
    text = GOOGLENET.read_text().replace("  - pool5:", "  - extra: inc\n  - pool5:")
    uri = uri_of("complete-types.yaml")
    client.open(uri, GOOGLENET.read_text())
    client.change(uri, 2, text)
    line, character = position_of(text, "extra: inc", len("extra: inc"))
    offered = labels(client.complete(uri, line, character))
    assert "conv" in offered
    assert set(REGISTRY) | set(ALIASES) <= offered
    assert {"inception", "aux_classifier"} <= offered  # the spec's blocks
    type_key = "  - pool9: {type: max"
    text = TINY + type_key + "\n"
    client.change(uri, 3, text)
    line, character = position_of(text, type_key, len(type_key))
    assert "maxpool" in labels(client.complete(uri, line, character))


def test_completion_offers_the_rows_fields_as_key_equals(client: Client) -> None:
    row = "  - c2: conv 3x3 16 padding=same "
    text = TINY.replace("cnov", "conv") + row + "\n"
    uri = uri_of("complete-fields.yaml")
    client.open(uri, text)
    line, character = position_of(text, row, len(row))
    offered = labels(client.complete(uri, line, character))
    fields = set(REGISTRY["conv"].params.model_fields)
    assert {"kernel", "stride"} <= fields
    assert {f"{name}=" for name in fields - {"padding"}} <= offered
    assert "padding=" not in offered  # already written
    assert {f"{option}=" for option in ROW_OPTIONS} <= offered
    assert "units" in REGISTRY["dense"].params.model_fields and "units" not in fields
    assert "units=" not in offered  # a field of dense, not of conv

    value = "  - p: maxpool 3x3/2 rounding="
    text = TINY.replace("cnov", "conv") + value + "\n"
    client.change(uri, 2, text)
    line, character = position_of(text, value, len(value))
    assert labels(client.complete(uri, line, character)) == {"floor", "ceil"}


def test_completion_offers_variables_and_block_arguments(client: Client) -> None:
    text = GOOGLENET.read_text()
    uri = uri_of("complete-vars.yaml")
    client.open(uri, text)
    line, character = position_of(text, "dense $num_classes", len("dense $num"))
    items = client.complete(uri, line, character)
    assert "$num_classes" in labels(items)
    (item,) = [i for i in items if i["label"] == "$num_classes"]
    edit = item["textEdit"]  # replaces the typed `$num`
    assert edit["range"]["start"]["character"] == character - len("$num")
    assert edit["newText"] == "$num_classes"
    # inside the inception block its arguments are variables too
    line, character = position_of(text, "conv 1x1 $n1x1", len("conv 1x1 $"))
    offered = labels(client.complete(uri, line, character))
    assert {"$n1x1", "$n3x3red", "$pool_proj", "$num_classes"} <= offered
    # in the table they are not
    line, character = position_of(text, "dense $num_classes", len("dense $"))
    assert "$n1x1" not in labels(client.complete(uri, line, character))


def test_completion_works_in_text_that_does_not_parse(client: Client) -> None:
    text = "name: half\ninput: 32x32x3\nvars: {width: 8}\nlayers:\n  - a: conv 3x3 ${wi\n  - b: "
    uri = uri_of("complete-broken.yaml")
    assert client.open(uri, text)  # an error: the text does not parse
    line, character = position_of(text, "${wi", len("${wi"))
    assert "width" in labels(client.complete(uri, line, character))
    line, character = position_of(text, "  - b: ", len("  - b: "))
    assert "conv" in labels(client.complete(uri, line, character))
    defaults = text.replace("vars:", "defaults:\n  conv: {act\nvars:")
    client.change(uri, 2, defaults)
    line, character = position_of(defaults, "{act", len("{act"))
    assert "activation: " in {
        i["textEdit"]["newText"] for i in client.complete(uri, line, character)
    }
    top = text + "\nbl"
    client.change(uri, 3, top)
    keys = labels(client.complete(uri, len(top.split("\n")) - 1, 2))
    assert "blocks" in keys and "layers" not in keys  # `layers` is already there


# ---- hover and inlay hints -------------------------------------------------------------------

PAPER_3A = {"output": "28x28x256", "params_k": 159, "macs_m": 128}
"""GoogLeNet's Table 1, inception (3a): output 28x28x256, params 159K (K = 1024 in the
table, as the spec's header says), ops 128M."""


def test_hover_on_a_row_gives_its_size_params_and_macs(client: Client) -> None:
    text = GOOGLENET.read_text()
    uri = uri_of("googlenet.yaml")
    assert client.open(uri, text) == []
    line, character = position_of(text, "inception_3a:", 2)
    shown = client.hover(uri, line, character)
    assert shown is not None and PAPER_3A["output"] in shown
    params = int(re.search(r"([\d,]+) params", shown).group(1).replace(",", ""))
    assert abs(params / (PAPER_3A["params_k"] * 1024) - 1) < 0.02  # the paper rounds loosely
    assert f"{PAPER_3A['macs_m']}M MACs" in shown
    assert "inception (block)" in shown

    line, character = position_of(text, "dense $num_classes", len("dense $n"))
    assert "`num_classes` = `1000`" in client.hover(uri, line, character)  # vars: num_classes

    line, character = position_of(text, "conv 7x7/2 64", 1)  # the type word of conv1
    shown = client.hover(uri, line, character)
    assert "112x112x64" in shown and "7x7/2" in shown  # the row (Table 1: 7x7/2, 112x112x64)
    assert "conv KxK" in shown and "`filters`" in shown  # and the layer type's usage


def test_inlay_hints_label_every_row_of_googlenet(client: Client) -> None:
    text = GOOGLENET.read_text()
    uri = uri_of("googlenet-hints.yaml")
    client.open(uri, text)
    lines = text.split("\n")
    table = lines.index("layers:")
    row_lines = [n for n, line in enumerate(lines) if n > table and re.match(r"  - \w+:", line)]
    assert len(row_lines) == 23
    hints = client.hints(uri)
    assert [h["position"]["line"] for h in hints] == row_lines
    for hint in hints:
        line = lines[hint["position"]["line"]]
        assert hint["position"]["character"] == len(line)  # at the end of the line
        expected = re.search(r"-> (\d+x\d+x\S+)", line)  # the paper's output column
        if expected:
            assert hint["label"].startswith("→ " + expected[1].replace("$num_classes", "1000"))
    (row_3a,) = [h for h in hints if "inception_3a" in lines[h["position"]["line"]]]
    assert row_3a["label"].startswith("→ 28x28x256") and row_3a["label"].endswith("128M")


def test_hint_positions_count_utf16_units(client: Client) -> None:
    line = "  - c1: conv 3x3 8 same  # 😀 a wide character before the hint"
    text = f"name: wide\ninput: 8x8x3\nlayers:\n{line}\n"
    uri = uri_of("utf16.yaml")
    client.open(uri, text)
    (hint,) = client.hints(uri)
    assert hint["position"] == {"line": 3, "character": len(line.encode("utf-16-le")) // 2}
    assert hint["position"]["character"] == len(line) + 1  # 😀 is two UTF-16 code units


def test_hints_stay_on_unchanged_lines_while_the_text_has_errors(client: Client) -> None:
    text = GOOGLENET.read_text()
    uri = uri_of("googlenet-stale.yaml")
    client.open(uri, text)
    broken = text.replace("inception_3b: inception 128", "inception_3b: incep 128").replace(
        "  - pool3:", "  # a new comment line\n  - pool3:"
    )
    assert client.change(uri, 2, broken)  # an error now
    lines = broken.split("\n")
    hints = {h["position"]["line"]: h["label"] for h in client.hints(uri)}
    three_a, three_b = position_of(broken, "inception_3a:")[0], position_of(broken, "incep 128")[0]
    assert hints[three_a].startswith("→ 28x28x256")
    assert three_b not in hints  # the changed line shows nothing stale
    pool3 = lines.index(next(line for line in lines if line.startswith("  - pool3:")))
    assert hints[pool3].startswith("→ 14x14x480")  # moved down with the inserted line
    line, character = position_of(broken, "inception_3a:", 2)
    assert "28x28x256" in client.hover(uri, line, character)


# ---- robustness and speed --------------------------------------------------------------------


def garbage() -> list[str]:
    """Texts an editor may hold mid-edit, or that are not specs at all."""
    spec = GOOGLENET.read_text()
    texts = [
        "".join(chr(i) for i in range(300)),
        "\x00\x01\x02binary\xff\ufffe" * 20,
        "name: x\ninput: 32x32x3\nlayers:\n  - c1: conv 3x3/",
        "name: x\ninput: 32x32x3\nlayers:\n  - c1: conv 3x3 16 padding=[1,",
        "name: x\ninput: 32x32x3\nlayers:\n  - c1: {type: ",
        "name: x\ninput: 32x32x3\nlayers:\n  - c1: conv ${1 +",
        "name: x\ninput: 32x32x3\nvars: {a: ${a}}\nlayers:\n  - dense $a",
        "name: x\ninput: 99999999999x99999999999x3\nlayers:\n  - conv 99999999999x3 16",
        "\tname: x\n- - - -\n:\n{{{{\n]]]\n&a [*a, *a]\n",
        "[" * 300,
        "layers: " + "[" * 100 + "]" * 100,
        "name: \ud800x\ninput: 8x8x1\nlayers:\n  - relu",
        "",
        "\n\n\n",
        "layers:\n  - \n  -\n-",
        spec[: len(spec) // 2],
        spec.replace("inception ", "inception ${", 3),
    ]
    rng = random.Random(0)
    pieces = ["  - ", "c1: ", "conv ", "3x3/2 ", "$w ", "${", "}", "[", "]", "{", "}", ": ", "\n"]
    pieces += ["->", " 28x28x", "from=", "repeat=", "blocks:\n", "layers:\n", "vars:\n", "#", "é😀"]
    for _ in range(12):
        texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(5, 60))))
    return texts


def test_garbage_gets_diagnostics_and_answers_never_tracebacks(client: Client) -> None:
    for number, text in enumerate(garbage()):
        uri = uri_of(f"garbage-{number}.yaml")
        client.open(uri, text)
        lines = text.split("\n")
        calls: list[tuple[str, Any]] = []
        for line in {0, len(lines) // 2, len(lines) - 1, len(lines) + 3}:
            width = len(lines[line]) if line < len(lines) else 0
            for character in {0, width // 2, width, width + 5}:
                where = {
                    "textDocument": {"uri": uri},
                    "position": {"line": line, "character": character},
                }
                calls += [("textDocument/completion", where), ("textDocument/hover", where)]
        client.requests(calls)  # none answers with an error
        client.hints(uri)
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert "Traceback" not in client.stderr_text()


def test_a_10000_row_spec_stays_responsive(client: Client) -> None:
    rows = [f"  - c{i}: conv 3x3 $width same relu" for i in range(10_000)]
    text = "name: long\ninput: 16x16x8\nvars: {width: 8}\nlayers:\n" + "\n".join(rows) + "\n"
    uri = uri_of("long.yaml")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    assert client.open(uri, text) == []
    timings["open -> diagnostics"] = time.perf_counter() - start

    start = time.perf_counter()
    hints = client.hints(uri, 5000, 5050)
    timings["inlay hints, 50 visible lines"] = time.perf_counter() - start
    assert [h["position"]["line"] for h in hints] == list(range(5000, 5051))
    assert all(h["label"] == "→ 16x16x8  584  147K" for h in hints)  # 9*8*8+8; 16*16*8*72

    broken = text.replace("c9000: conv", "c9000: cnov")
    mark = client.mark()
    start = time.perf_counter()
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": broken}]},
    )
    line, character = position_of(broken, "c42: conv 3x3 ", len("c42: conv 3x3 "))
    asked = time.perf_counter()
    offered = labels(client.complete(uri, line, character))  # while the change is analysed
    timings["completion during analysis"] = time.perf_counter() - asked
    assert "padding=" in offered
    (diagnostic,) = client.diagnostics(uri, mark, timeout=60)
    timings["change -> diagnostics"] = time.perf_counter() - start
    assert diagnostic["range"]["start"] == {"line": 9004, "character": 11}

    start = time.perf_counter()
    shown = client.hover(uri, 7000, 5)
    timings["hover"] = time.perf_counter() - start
    assert shown is not None and "16x16x8" in shown  # the last good analysis, line unchanged

    start = time.perf_counter()
    assert len(client.hints(uri)) == 9_999  # all but the changed row, from the last analysis
    timings["inlay hints, all rows"] = time.perf_counter() - start
    print("\n" + "\n".join(f"{name}: {seconds * 1000:.0f} ms" for name, seconds in timings.items()))
    assert timings["completion during analysis"] < 2.0
    assert timings["hover"] < 3.0


def test_the_session_never_imported_jax(server: tuple[Client, dict[str, Any]]) -> None:
    imports = [line for line in server[0].stderr_text().splitlines() if "import time:" in line]
    assert any(re.search(r"\|\s+pygls$", line) for line in imports)  # the log is complete
    assert any("netspec.lsp.server" in line for line in imports)
    assert not [line for line in imports if re.search(r"\|\s+(jax|jaxlib|flax)(\.|$)", line)]
