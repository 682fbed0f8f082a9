"""specs/unet.yaml against U-Net's Figure 1 (Ronneberger et al. 2015), counted here in plain
Python: 3x3 convolutions with bias (padded, so every map keeps its size), 2x2 max pooling, 2x2
up-convolutions halving the channels, skip concatenations, a final 1x1 convolution."""

from __future__ import annotations

import pytest

from netspec import analyze_spec

from .conftest import SPECS


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def unet_counts(size: int, channels: int, width: int, classes: int) -> tuple[int, int]:
    """(parameters, multiply-adds) of the padded U-Net: convs count k*k*cin*cout per output
    pixel; a 2x2 stride-2 up-convolution k*k*cin*cout per input pixel."""
    params = macs = 0
    cin, side = channels, size
    skips = []
    for level in range(5):  # four contracting steps and the bottom
        cout = width * 2**level
        for c in (cin, cout):
            params += conv(3, c, cout)
            macs += side * side * 9 * c * cout
        skips.append((cout, side))
        cin = cout
        if level < 4:
            side //= 2
    for cout, skip_side in reversed(skips[:4]):  # four expansive steps
        params += conv(2, cin, cout)
        macs += side * side * 4 * cin * cout  # per input pixel
        side = skip_side
        for c in (2 * cout, cout):
            params += conv(3, c, cout)
            macs += side * side * 9 * c * cout
        cin = cout
    params += conv(1, cin, classes)
    macs += side * side * cin * classes
    return params, macs


def test_the_formula_gives_the_figures_count() -> None:
    # contracting path 18,842,048 + expansive path 12,188,480 + last 1x1 (64*2 + 2)
    assert unet_counts(256, 1, 64, 2)[0] == 18_842_048 + 12_188_480 + 130 == 31_030_658


@pytest.mark.parametrize(
    ("size", "channels", "width", "classes"), [(256, 1, 64, 2), (64, 3, 8, 4), (96, 3, 16, 21)]
)
def test_unet_spec_counts(size: int, channels: int, width: int, classes: int) -> None:
    report = analyze_spec(
        SPECS / "unet.yaml",
        [f"size={size}", f"channels={channels}", f"width={width}", f"num_classes={classes}"],
    )
    assert (report.params, report.macs) == unet_counts(size, channels, width, classes)
    assert report.output_shape == (size, size, classes)
