"""The language server: pygls wiring over the text-reading modules of this package.

Each open document is analysed off the event loop (one worker thread), a short while after
the last change, so completion stays quick while a long spec is read. Hover and inlay hints
wait briefly for the analysis of the current text and otherwise use the last one that got
the rows' numbers, on the lines that did not change since.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from . import rows as table
from .analysis import Analysis, RowInfo, analyze_text
from .completion import Suggestion, complete
from .diagnostics import diagnostics
from .hover import hover_markdown
from .positions import client_units, column_from_units, split_lines
from .vocabulary import Vocabulary, vocabulary

DEBOUNCE_S = 0.15
"""How long after a change the text is analysed (a newer change restarts the wait)."""
COLLECT_AFTER_CHARS = 100_000
"""Texts longer than this (about 3,000 rows) get a garbage collection after each analysis."""
WAIT_S = 1.0
"""How long hover and inlay hints wait for the analysis of the current text."""

KINDS = {
    "layer": types.CompletionItemKind.Class,
    "block": types.CompletionItemKind.Module,
    "field": types.CompletionItemKind.Field,
    "variable": types.CompletionItemKind.Variable,
    "keyword": types.CompletionItemKind.Keyword,
    "value": types.CompletionItemKind.EnumMember,
    "row": types.CompletionItemKind.Reference,
}


@dataclass
class Document:
    """What the server knows about one open document."""

    uri: str
    filename: str
    current: Analysis | None = None
    """The analysis of the most recently analysed text."""
    last_good: Analysis | None = None
    """The most recent analysis that has the rows' numbers."""
    last_parsed: Analysis | None = None
    """The most recent analysis whose text parsed (its blocks and variables)."""
    timer: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def vocabulary(self, lines: list[str]) -> Vocabulary:
        """The spec's names: the last parse's, and those the current `lines` add."""
        parsed, good = self.last_parsed, self.last_good
        return vocabulary(
            lines,
            parsed.variables if parsed else {},
            parsed.blocks if parsed else {},
            tuple(row.row.name for row in good.rows) if good else (),
        )


class NetspecServer(LanguageServer):
    """pygls LanguageServer with the open documents' analyses."""

    def __init__(self) -> None:
        super().__init__("netspec", __version__)
        self.documents: dict[str, Document] = {}
        self.analyser = ThreadPoolExecutor(1, thread_name_prefix="netspec-analysis")
        self.tasks: set[asyncio.Future[object]] = set()

    @property
    def encoding(self) -> str:
        kind = self.workspace.position_encoding
        return str(getattr(kind, "value", kind) or "utf-16")

    def text(self, uri: str) -> str:
        return self.workspace.get_text_document(uri).source

    # ---- analysis ----------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        """Analyse the document `delay` seconds from now (a pending wait is restarted)."""
        document = self.documents.get(uri)
        if document is None:
            return
        if document.timer is not None:
            document.timer.cancel()
        loop = asyncio.get_running_loop()
        document.timer = loop.call_later(delay, self.spawn, uri)

    def spawn(self, uri: str, notify: bool = True) -> asyncio.Future[Analysis | None]:
        """Start `refresh` as a task the server holds on to (the loop keeps only a weak
        reference to a task)."""
        task = asyncio.ensure_future(self.refresh(uri, notify))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def refresh(self, uri: str, notify: bool = False) -> Analysis | None:
        """Analyse the document's current text unless that is done; publish its diagnostics."""
        document = self.documents.get(uri)
        if document is None:
            return None
        async with document.lock:
            if self.documents.get(uri) is not document:  # closed (or opened again)
                return None
            text_document = self.workspace.get_text_document(uri)
            text, version = text_document.source, text_document.version
            if document.current is not None and document.current.text == text:
                return document.current
            loop = asyncio.get_running_loop()
            clean = document.current is None or document.current.analysed
            analysis = await loop.run_in_executor(
                self.analyser, analyze_and_collect, text, document.filename, clean
            )
            if self.documents.get(uri) is not document:
                return None
            document.current = analysis
            if analysis.analysed:
                document.last_good = analysis
            if analysis.parsed:
                document.last_parsed = analysis
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(
                    uri=uri, diagnostics=diagnostics(analysis, self.encoding), version=version
                )
            )
            if notify and analysis.analysed and self.can_refresh_hints():
                self.workspace_inlay_hint_refresh(None)
            return analysis

    async def settled(self, uri: str) -> None:
        """Wait (up to WAIT_S) until the document's current text is analysed."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.spawn(uri, notify=False)), WAIT_S)

    def can_refresh_hints(self) -> bool:
        workspace = self.client_capabilities.workspace
        hints = workspace.inlay_hint if workspace is not None else None
        return bool(hints is not None and hints.refresh_support)

    def visible_rows(
        self, document: Document, text: str, lines: list[str]
    ) -> tuple[list[tuple[int, RowInfo]], bool]:
        """(line, row) pairs for the current text, and whether they come from an older text
        (whose rows are kept on the lines that did not change)."""
        current = document.current
        if current is not None and current.analysed and current.text == text:
            return [(row.line, row) for row in current.rows], False
        good = document.last_good
        if good is None:
            return [], False
        return table.carried(good.rows, good.lines, lines), True


def create_server() -> NetspecServer:
    """A NetspecServer with every feature registered."""
    server = NetspecServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NetspecServer, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents[uri] = Document(uri, filename_of(uri))
        ls.schedule(uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NetspecServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE_S)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NetspecServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = ls.documents.pop(uri, None)
        if document is not None and document.timer is not None:
            document.timer.cancel()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["$", "{", "="]),
    )
    def completion(
        ls: NetspecServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return None
        lines = split_lines(ls.text(document.uri))
        line_no = params.position.line
        if not 0 <= line_no < len(lines):
            return None
        line = lines[line_no]
        column = column_from_units(line, params.position.character, ls.encoding)
        vocab = document.vocabulary(lines)
        found = complete(lines, line_no, column, vocab)
        if found is None:
            return None
        edit_range = types.Range(
            types.Position(line_no, client_units(line[: found.start], ls.encoding)),
            types.Position(line_no, client_units(line[:column], ls.encoding)),
        )
        items = [completion_item(item, edit_range, n) for n, item in enumerate(found.items)]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: NetspecServer, params: types.HoverParams) -> types.Hover | None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return None
        await ls.settled(document.uri)
        text = ls.text(document.uri)
        lines = split_lines(text)
        line_no = params.position.line
        if not 0 <= line_no < len(lines):
            return None
        line = lines[line_no]
        column = column_from_units(line, params.position.character, ls.encoding)
        visible, stale = ls.visible_rows(document, text, lines)
        on_line = [row for where, row in visible if where == line_no]
        vocab = document.vocabulary(lines)
        markdown = hover_markdown(line, column, on_line, vocab, stale)
        if markdown is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown)
        )

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    async def inlay_hint(ls: NetspecServer, params: types.InlayHintParams) -> list[types.InlayHint]:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return []
        await ls.settled(document.uri)
        text = ls.text(document.uri)
        lines = split_lines(text)
        visible, stale = ls.visible_rows(document, text, lines)
        first, last = params.range.start.line, params.range.end.line
        hints = []
        for line_no, on_line in sorted(table.by_line(visible).items()):
            if not first <= line_no <= last or line_no >= len(lines):
                continue
            line = lines[line_no]
            hints.append(
                types.InlayHint(
                    position=types.Position(line_no, client_units(line, ls.encoding)),
                    label=table.line_label(on_line),
                    padding_left=True,
                    tooltip="\n".join(table.hint_tooltip(row, stale) for row in on_line),
                )
            )
        return hints

    return server


def analyze_and_collect(text: str, filename: str, likely_clean: bool) -> Analysis:
    """`analyze_text`; then, for a long text, a garbage collection while still off the event
    loop: the front end pauses the collector, and the next full collection walks everything
    it made (for a 10,000-row spec, a second's pause that would otherwise fall on a request)."""
    analysis = analyze_text(text, filename, likely_clean)
    if len(text) > COLLECT_AFTER_CHARS:
        gc.collect()
    return analysis


def completion_item(item: Suggestion, edit_range: types.Range, order: int) -> types.CompletionItem:
    documentation = (
        types.MarkupContent(kind=types.MarkupKind.Markdown, value=item.documentation)
        if item.documentation
        else None
    )
    return types.CompletionItem(
        label=item.label,
        kind=KINDS.get(item.kind),
        detail=item.detail or None,
        documentation=documentation,
        text_edit=types.TextEdit(range=edit_range, new_text=item.insert or item.label),
        sort_text=f"{order:04d}",
    )


def filename_of(uri: str) -> str:
    """The path of a file: URI (errors name it), else the URI itself."""
    return (to_fs_path(uri) if uri.startswith("file:") else None) or uri


def serve() -> None:
    """Run the server on stdin/stdout until the client says exit."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="netspec lsp: %(levelname)s: %(message)s"
    )
    create_server().start_io()


__all__ = ["NetspecServer", "create_server", "serve"]
