"""A box's size from its text, and where each of its lines goes."""

from __future__ import annotations

from .clusters import baseline
from .geometry import Rect, TextLine
from .model import Box
from .style import (
    BOX_MIN_WIDTH,
    BOX_PAD_X,
    BOX_PAD_Y,
    INK,
    LINE_HEIGHT,
    MUTED,
    NAME_SIZE,
    TEXT_SIZE,
    TRAIN,
)
from .text import text_width


def line_specs(box: Box) -> list[tuple[str, float, bool, str]]:
    """(text, size px, bold, colour) of each line: the name bold, then the rest, the note of
    a train-only head last in its colour."""
    lines = [(box.lines[0], NAME_SIZE, True, INK)]
    lines += [(text, TEXT_SIZE, False, MUTED if i else INK) for i, text in enumerate(box.lines[1:])]
    if box.note:
        lines.append((box.note, TEXT_SIZE, True, TRAIN))
    return lines


def box_size(box: Box) -> tuple[float, float]:
    """Width and height of `box`, px: its widest line and its lines' height, padded."""
    specs = line_specs(box)
    width = max(text_width(text, size, bold) for text, size, bold, _ in specs) + 2 * BOX_PAD_X
    height = sum(size * LINE_HEIGHT for _, size, _, _ in specs) + 2 * BOX_PAD_Y
    return max(width, BOX_MIN_WIDTH), height


def box_lines(box: Box, rect: Rect) -> tuple[TextLine, ...]:
    """The lines of `box` drawn centred in `rect`, one under the other."""
    specs = line_specs(box)
    used = sum(size * LINE_HEIGHT for _, size, _, _ in specs)
    top = rect.y + (rect.h - used) / 2
    lines = []
    for text, size, bold, color in specs:
        lines.append(TextLine(text, rect.cx, baseline(top, size), size, bold, color))
        top += size * LINE_HEIGHT
    return tuple(lines)
