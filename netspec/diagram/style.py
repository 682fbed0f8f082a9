"""Sizes (px, as the SVG draws them) and colours of a diagram: one place to tune the look."""

from __future__ import annotations

NAME_SIZE = 13.0
"""Font size of a box's first line (its name, bold), px."""
TEXT_SIZE = 12.0
"""Font size of the other lines (type, output size, note), px."""
TITLE_SIZE = 16.0
LINE_HEIGHT = 1.3
"""Line spacing, in font sizes."""

BOX_PAD_X = 10.0
BOX_PAD_Y = 5.0
BOX_MIN_WIDTH = 96.0
CORNER = 4.0
"""Box corner radius, px."""

X_SPACE = 22.0
"""Least horizontal gap between boxes of one layer, px."""
Y_SPACE = 30.0
"""Vertical gap between layers, where edges bend, px."""
EDGE_CLEARANCE = 10.0
"""Width reserved for an edge passing a layer (beside X_SPACE on either side), px."""
PORT_SPACING = 14.0
"""Distance between edges leaving or entering one box side by side, px."""

CLUSTER_PAD = 12.0
"""Space between a cluster's frame and the boxes in it, px."""
GUTTER = 60.0
"""Space between two columns of a wrapped diagram, px."""
MARGIN = 24.0
TARGET_RATIO = 0.9
"""Wrap a tall chain into columns to bring height / width near this."""
WRAP_ABOVE = 1.8
"""Wrap only a drawing taller than this many times its width."""
MAX_COLUMNS = 8

ARROW_LENGTH = 8.0
ARROW_WIDTH = 7.0
EDGE_WIDTH = 1.2

INK = "#1f1f1f"
MUTED = "#555555"
EDGE = "#4a4a4a"
TRAIN = "#c0392b"
"""Train-only heads: border, edges and note."""
CLUSTER_FILL = "#f7f7fb"
CLUSTER_BORDER = "#8c8ca8"
FILLS = {
    "input": "#ffffff",
    "conv": "#dbe9f7",
    "pool": "#e3f1da",
    "norm": "#eeeeee",
    "dense": "#fde6d2",
    "merge": "#fff3c4",
    "block": "#e9e1f4",
    "other": "#ffffff",
}
TRAIN_FILL = "#fdecea"
