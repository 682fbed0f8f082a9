"""`netspec lsp`: a language server for spec files (diagnostics, completion, hover, inlay hints).

The editor-facing half (`server.py`, pygls) is thin; the rest reads spec text with netspec's own
front end and never imports JAX. See docs/lsp.md.
"""

from __future__ import annotations


def main() -> int:
    """Serve the Language Server Protocol on standard input and output until the client exits."""
    from .server import serve

    serve()
    return 0


__all__ = ["main"]
