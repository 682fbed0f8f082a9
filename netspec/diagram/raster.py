"""A Drawing as PNG or PDF bytes, drawn by matplotlib (Agg / its PDF backend: no system
libraries) from the same geometry as the SVG, in the DejaVu Sans that matplotlib ships."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .geometry import Command, Drawing, Rect, TextLine
from .style import (
    CLUSTER_BORDER,
    CLUSTER_FILL,
    CORNER,
    EDGE,
    EDGE_WIDTH,
    FILLS,
    INK,
    TRAIN,
    TRAIN_FILL,
)
from .text import FONT_FAMILY

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.path import Path

PNG_SCALE = 1.5
"""PNG pixels per drawing px: 12 px text is drawn 18 px high, legible at 100%."""
MAX_PIXELS = 60_000_000
"""A larger PNG is scaled down to this many pixels (Agg's memory, an image viewer's patience)."""


def to_bytes(drawing: Drawing, fmt: str) -> bytes:
    """`drawing` as `fmt` ("png" or "pdf")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A figure of `width` x `height` points has one point per drawing px (the PDF: one
    # point per px); the dpi then scales the PNG.
    scale = min(PNG_SCALE, (MAX_PIXELS / (drawing.width * drawing.height)) ** 0.5)
    figure = Figure(figsize=(drawing.width / 72, drawing.height / 72), dpi=72 * scale)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, drawing.width)
    axes.set_ylim(drawing.height, 0)
    axes.set_axis_off()
    draw_all(axes, drawing)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=72 * scale, facecolor="white")
    return buffer.getvalue()


def draw_all(axes: Axes, drawing: Drawing) -> None:
    from matplotlib.patches import PathPatch, Polygon

    for placed in drawing.clusters:
        c = placed.cluster
        add_rect(axes, placed.rect, CLUSTER_FILL, TRAIN if c.train_only else CLUSTER_BORDER,
                 c.train_only, 2 * CORNER)  # fmt: skip
        for line in placed.lines:
            add_text(axes, line)
    for edge in drawing.edges:
        color = TRAIN if edge.train_only else EDGE
        axes.add_patch(
            PathPatch(
                to_path(edge.path),
                fill=False,
                edgecolor=color,
                linewidth=EDGE_WIDTH,
                linestyle=(0, (5, 3)) if edge.train_only else "solid",
            )
        )
        axes.add_patch(Polygon(edge.arrow, closed=True, facecolor=color, edgecolor="none"))
    for placed in drawing.boxes:
        b = placed.box
        fill = TRAIN_FILL if b.train_only else FILLS.get(b.style, "#ffffff")
        add_rect(axes, placed.rect, fill, TRAIN if b.train_only else INK, b.train_only, CORNER)
        for line in placed.lines:
            add_text(axes, line)
    for line in drawing.title:
        add_text(axes, line)


def add_rect(axes: Axes, r: Rect, fill: str, edge: str, dashed: bool, radius: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    axes.add_patch(
        FancyBboxPatch(
            (r.x, r.y),
            r.w,
            r.h,
            boxstyle=f"round,pad=0,rounding_size={radius}",
            facecolor=fill,
            edgecolor=edge,
            linewidth=1.2,
            linestyle=(0, (5, 3)) if dashed else "solid",
        )
    )


def add_text(axes: Axes, line: TextLine) -> None:
    axes.text(
        line.x,
        line.y,
        line.text,
        fontsize=line.size,
        fontfamily=FONT_FAMILY,
        fontweight="bold" if line.bold else "normal",
        color=line.color,
        ha="center" if line.anchor == "middle" else "left",
        va="baseline",
        parse_math=False,
        usetex=False,
    )


def to_path(commands: list[Command] | tuple[Command, ...]) -> Path:
    """The SVG-style path commands as a matplotlib Path."""
    from matplotlib.path import Path

    vertices, codes = [], []
    for op, values in commands:
        points = list(zip(values[::2], values[1::2], strict=True))
        code = {"M": Path.MOVETO, "L": Path.LINETO, "C": Path.CURVE4}[op]
        vertices += points
        codes += [code] * len(points)
    return Path(vertices, codes)
