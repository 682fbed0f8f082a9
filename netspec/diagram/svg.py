"""A Drawing as SVG text, written directly (no renderer needed).

Every string from the spec reaches the file through `escape` / `quoteattr`, so a name or
label holding markup (`<script>`, quotes, `&`) stays text. Each element carries its role as a
class (`box`, `cluster`, `edge`, `title`) and the box keys it stands for as data attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from .geometry import Command, Drawing, Point, Rect, TextLine
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
from .text import SVG_FONT_FAMILY


def number(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def path_data(path: Sequence[Command]) -> str:
    return " ".join(op + " " + " ".join(number(v) for v in values) for op, values in path)


def polygon_data(points: Sequence[Point]) -> str:
    return "M " + " L ".join(f"{number(x)} {number(y)}" for x, y in points) + " Z"


def rect(r: Rect, fill: str, stroke: str, dashed: bool = False, radius: float = 0.0) -> str:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    corner = f' rx="{number(radius)}"' if radius else ""
    return (
        f'<rect x="{number(r.x)}" y="{number(r.y)}" width="{number(r.w)}" '
        f'height="{number(r.h)}"{corner} fill="{fill}" stroke="{stroke}" '
        f'stroke-width="1.2"{dash}/>'
    )


def text(line: TextLine) -> str:
    weight = ' font-weight="bold"' if line.bold else ""
    return (
        f'<text x="{number(line.x)}" y="{number(line.y)}" font-size="{number(line.size)}"'
        f'{weight} fill="{line.color}" text-anchor="{line.anchor}">{escape(line.text)}</text>'
    )


def to_svg(drawing: Drawing) -> str:
    """The whole drawing as a standalone SVG document."""
    w, h = number(drawing.width), number(drawing.height)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family={quoteattr(SVG_FONT_FAMILY)}>',
        f"<title>{escape(drawing.title[0].text if drawing.title else '')}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<g class="title">',
        *(text(line) for line in drawing.title),
        "</g>",
    ]
    for placed in drawing.clusters:
        c = placed.cluster
        out.append(
            f'<g class="cluster{" train-only" if c.train_only else ""}" '
            f"data-key={quoteattr(c.key)} data-row={quoteattr(c.row)}>"
        )
        border = TRAIN if c.train_only else CLUSTER_BORDER
        out.append(rect(placed.rect, CLUSTER_FILL, border, c.train_only, CORNER * 2))
        out += [text(line) for line in placed.lines]
        out.append("</g>")
    for edge in drawing.edges:
        color = TRAIN if edge.train_only else EDGE
        dash = ' stroke-dasharray="5 3"' if edge.train_only else ""
        out.append(
            f'<g class="edge{" train-only" if edge.train_only else ""}" '
            f"data-source={quoteattr(edge.source)} data-target={quoteattr(edge.target)}>"
            f'<path d="{path_data(edge.path)}" fill="none" stroke="{color}" '
            f'stroke-width="{EDGE_WIDTH}"{dash}/>'
            f'<path class="arrowhead" d="{polygon_data(edge.arrow)}" fill="{color}"/></g>'
        )
    for placed in drawing.boxes:
        b = placed.box
        fill = TRAIN_FILL if b.train_only else FILLS.get(b.style, "#ffffff")
        out.append(
            f'<g class="box{" train-only" if b.train_only else ""}" '
            f"data-key={quoteattr(b.key)} data-row={quoteattr(b.row)}>"
        )
        out.append(rect(placed.rect, fill, TRAIN if b.train_only else INK, b.train_only, CORNER))
        out += [text(line) for line in placed.lines]
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
