"""`netspec draw`: the network as a diagram (SVG, PNG or PDF), one box per table row.

Like Keras's `plot_model(show_shapes=True)`: each row's name, type and output size, edges from
the rows it reads, the input on top; blocks drawn as one box unless `expand` names them, then
layer by layer in a frame. Train-only heads are dashed and red with their loss weight.
No JAX: the analysis alone (shapes) is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..compiled import Compiled, compile_with
from ..errors import SpecError
from ..fileio import atomic_write_bytes
from ..specfile import SpecSource
from .geometry import Drawing
from .model import Diagram, build_diagram

FORMATS = ("svg", "png", "pdf")

__all__ = ["FORMATS", "Diagram", "Drawing", "draw", "layout_of", "render"]


def layout_of(compiled: Compiled, expand: Iterable[str] = ()) -> Drawing:
    """The laid-out diagram of a compiled spec (px), with the rows `expand` names opened:
    row names, block names, `ROW[i]` (one copy of a repeated row) or `all`."""
    from ..table import human
    from .layout import lay_out  # (grandalf takes about 0.3 s to import: only when drawing)

    report = compiled.report
    diagram = build_diagram(compiled.graph, report, expand)
    params = f"{report.params:,} params"
    if report.inference_params != report.params:
        params += f" ({report.inference_params:,} without train-only heads)"
    subtitle = f"{params} · {human(report.macs)} MACs per example"
    return lay_out(diagram, subtitle)


def render(compiled: Compiled, fmt: str, expand: Iterable[str] = ()) -> bytes:
    """The diagram as `fmt` bytes: "svg", "png" or "pdf"."""
    if fmt not in FORMATS:
        raise SpecError(f"cannot draw as {fmt!r}: use one of {', '.join(FORMATS)}", field="format")
    drawing = layout_of(compiled, expand)
    if fmt == "svg":
        from .svg import to_svg

        return to_svg(drawing).encode("utf-8")
    from .raster import to_bytes

    return to_bytes(drawing, fmt)


def format_of(path: Path) -> str:
    """The format a file name asks for, from its extension."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise SpecError(
            f"cannot tell the format from the extension {path.suffix or '(none)'!r}: "
            f"name the file .{', .'.join(FORMATS)}",
            path=str(path),
        )
    return fmt


def draw(
    spec: Compiled | SpecSource,
    path: str | Path,
    expand: Iterable[str] = (),
    overrides: list[str] | Mapping[str, Any] | None = None,
) -> Path:
    """Draw `spec` (a Compiled, a spec file, zoo name or YAML text, with variable
    `overrides`) to `path`; its extension (.svg, .png, .pdf) picks the format. The file is
    written whole or not at all. Returns the path."""
    path = Path(path)
    fmt = format_of(path)
    compiled = spec if isinstance(spec, Compiled) else compile_with(spec, overrides)
    data = render(compiled, fmt, expand)
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise SpecError(f"cannot write it: {error.strerror}", path=str(path)) from None
    return path
