"""Text widths without a renderer: DejaVu Sans advance widths, the font matplotlib bundles.

Box sizes come from these widths, so the SVG (whose viewer may pick a fallback such as Verdana,
about as wide) and the PNG (drawn by matplotlib in DejaVu Sans) fit their text alike. Widths are
in em (multiply by the font size in px); characters outside printable ASCII count as 1 em, the
widest. Generated from matplotlib's DejaVuSans.ttf and DejaVuSans-Bold.ttf (horiAdvance /
units_per_EM for code points 32..126); tests/test_draw.py checks them against matplotlib.
"""

from __future__ import annotations

FONT_FAMILY = "DejaVu Sans"
SVG_FONT_FAMILY = "'DejaVu Sans', Verdana, 'Bitstream Vera Sans', sans-serif"

ASCENT = 0.928
"""DejaVu Sans ascender, in em."""

REGULAR: tuple[float, ...] = (
    0.318, 0.401, 0.46, 0.838, 0.636, 0.95, 0.78, 0.275, 0.39, 0.39, 0.5, 0.838, 0.318, 0.361,
    0.318, 0.337, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.337,
    0.337, 0.838, 0.838, 0.838, 0.531, 1, 0.684, 0.686, 0.698, 0.77, 0.632, 0.575, 0.775,
    0.752, 0.295, 0.295, 0.656, 0.557, 0.863, 0.748, 0.787, 0.603, 0.787, 0.695, 0.635, 0.611,
    0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.39, 0.337, 0.39, 0.838, 0.5, 0.5, 0.613, 0.635,
    0.55, 0.635, 0.615, 0.352, 0.635, 0.634, 0.278, 0.278, 0.579, 0.278, 0.974, 0.634, 0.612,
    0.635, 0.635, 0.411, 0.521, 0.392, 0.634, 0.592, 0.818, 0.592, 0.592, 0.525, 0.636, 0.337,
    0.636, 0.838,
)  # fmt: skip

BOLD: tuple[float, ...] = (
    0.348, 0.456, 0.521, 0.838, 0.696, 1.002, 0.872, 0.306, 0.457, 0.457, 0.523, 0.838, 0.38,
    0.415, 0.38, 0.365, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696,
    0.4, 0.4, 0.838, 0.838, 0.838, 0.58, 1, 0.774, 0.762, 0.734, 0.83, 0.683, 0.683, 0.821,
    0.837, 0.372, 0.372, 0.775, 0.637, 0.995, 0.837, 0.85, 0.733, 0.85, 0.77, 0.72, 0.682,
    0.812, 0.774, 1.103, 0.771, 0.724, 0.725, 0.457, 0.365, 0.457, 0.838, 0.5, 0.5, 0.675,
    0.716, 0.593, 0.716, 0.678, 0.435, 0.716, 0.712, 0.343, 0.343, 0.665, 0.343, 1.042, 0.712,
    0.687, 0.716, 0.716, 0.493, 0.595, 0.478, 0.712, 0.652, 0.924, 0.645, 0.652, 0.582, 0.712,
    0.365, 0.712, 0.838,
)  # fmt: skip

MAX_CHARS = 60
"""Longer text is cut to this many characters with an ellipsis: a box stays a box."""


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of `text` in px at font size `size` px."""
    table = BOLD if bold else REGULAR
    em = sum(table[ord(c) - 32] if 32 <= ord(c) < 127 else 1.0 for c in text)
    return em * size


def clean(text: str) -> str:
    """`text` fit for one drawn line: control characters (which XML 1.0 cannot carry, even
    escaped) become U+FFFD, and text past MAX_CHARS is cut with an ellipsis."""
    text = "".join(
        "\ufffd" if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000) else c
        for c in str(text)
    )
    text = text.replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
