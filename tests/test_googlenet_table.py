"""`netspec compile specs/googlenet.yaml` against Table 1 of Szegedy et al. 2015.

The reference numbers below are typed in from the paper. Its params column counts weights in
units of 1024 (e.g. 3a: 163,328 weights = 159.5K); its ops column counts multiply-adds.
Table 1 is not consistent with its own filter counts in three places, which we document
instead of hiding: conv1 (2.7K/34M printed; a 7x7x3x64 convolution has 9,408 weights and
118M multiply-adds on a 112x112 output), 4c's params (463K printed; its columns give 497.5K)
and 5a (1072K/54M printed; its columns give 1018K/51.1M).
"""

from __future__ import annotations

import pytest

from netspec import analyze_spec

from .conftest import SPECS

# name, output size, depth, params (K = 1024 weights), ops (M multiply-adds); None = blank.
TABLE_1 = [
    ("conv1", (112, 112, 64), 1, 2.7, 34),
    ("pool1", (56, 56, 64), 0, None, None),
    ("conv2", (56, 56, 192), 2, 112, 360),
    ("pool2", (28, 28, 192), 0, None, None),
    ("inception_3a", (28, 28, 256), 2, 159, 128),
    ("inception_3b", (28, 28, 480), 2, 380, 304),
    ("pool3", (14, 14, 480), 0, None, None),
    ("inception_4a", (14, 14, 512), 2, 364, 73),
    ("inception_4b", (14, 14, 512), 2, 437, 88),
    ("inception_4c", (14, 14, 512), 2, 463, 100),
    ("inception_4d", (14, 14, 528), 2, 580, 119),
    ("inception_4e", (14, 14, 832), 2, 840, 170),
    ("pool4", (7, 7, 832), 0, None, None),
    ("inception_5a", (7, 7, 832), 2, 1072, 54),
    ("inception_5b", (7, 7, 1024), 2, 1388, 71),
    ("pool5", (1, 1, 1024), 0, None, None),
    ("dropout", (1, 1, 1024), 0, None, None),
    ("linear", (1, 1, 1000), 1, 1000, 1),
    ("softmax", (1, 1, 1000), 0, None, None),
]
PAPER_INCONSISTENT_PARAMS = {"conv1", "inception_4c", "inception_5a"}
PAPER_INCONSISTENT_OPS = {"conv1", "inception_5a"}

# The inception columns (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) and input depth.
INCEPTION_COLUMNS = {
    "inception_3a": (192, (64, 96, 128, 16, 32, 32)),
    "inception_3b": (256, (128, 128, 192, 32, 96, 64)),
    "inception_4a": (480, (192, 96, 208, 16, 48, 64)),
    "inception_4b": (512, (160, 112, 224, 24, 64, 64)),
    "inception_4c": (512, (128, 128, 256, 24, 64, 64)),
    "inception_4d": (512, (112, 144, 288, 32, 64, 64)),
    "inception_4e": (528, (256, 160, 320, 32, 128, 128)),
    "inception_5a": (832, (256, 160, 320, 32, 128, 128)),
    "inception_5b": (832, (384, 192, 384, 48, 128, 128)),
}


@pytest.fixture(scope="module")
def rows():
    report = analyze_spec(SPECS / "googlenet.yaml")
    return {row.name: row for row in report.rows}


def weights_only(row) -> int:
    """Table 1 counts weights without biases: each conv/dense has one bias per filter."""
    return row.params - bias_count(row.name)


def bias_count(name: str) -> int:
    if name in INCEPTION_COLUMNS:
        return sum(INCEPTION_COLUMNS[name][1])
    return {"conv1": 64, "conv2": 64 + 192, "linear": 1000}.get(name, 0)


@pytest.mark.parametrize("name, output, depth, params_k, ops_m", TABLE_1)
def test_row_output_size_and_depth_match_table_1(rows, name, output, depth, params_k, ops_m):
    assert rows[name].output_shape == output
    assert rows[name].depth == depth


@pytest.mark.parametrize(
    "name, output, depth, params_k, ops_m", [r for r in TABLE_1 if r[3] is not None]
)
def test_row_params_within_the_papers_rounding(rows, name, output, depth, params_k, ops_m):
    ours = weights_only(rows[name]) / 1024
    if name in PAPER_INCONSISTENT_PARAMS:
        pytest.xfail(f"Table 1 prints {params_k}K for {name}; its own columns give {ours:.1f}K")
    # Table 1 rounds loosely (4d: 590.5K printed as 580K): within 2%.
    assert ours == pytest.approx(params_k, rel=0.02)


@pytest.mark.parametrize(
    "name, output, depth, params_k, ops_m", [r for r in TABLE_1 if r[4] is not None]
)
def test_row_ops_within_the_papers_rounding(rows, name, output, depth, params_k, ops_m):
    ours = rows[name].macs / 1e6
    if name in PAPER_INCONSISTENT_OPS:
        pytest.xfail(f"Table 1 prints {ops_m}M for {name}; its own columns give {ours:.1f}M")
    # Printed as whole millions, rounded or truncated (4a: 73.6M printed as 73M).
    assert ops_m - 0.5 <= ours < ops_m + 1


@pytest.mark.parametrize("name", list(INCEPTION_COLUMNS))
def test_inception_rows_match_the_column_formula(rows, name):
    """An independent count from the six columns: 1x1, reduce->3x3, reduce->5x5, pool->proj."""
    depth_in, (n1, r3, n3, r5, n5, proj) = INCEPTION_COLUMNS[name]
    weights = depth_in * (n1 + r3 + r5 + proj) + 9 * r3 * n3 + 25 * r5 * n5
    assert weights_only(rows[name]) == weights
    height, width, channels = rows[name].output_shape
    assert channels == n1 + n3 + n5 + proj
    assert rows[name].macs == weights * height * width


def test_totals_match_the_papers_prose():
    report = analyze_spec(SPECS / "googlenet.yaml")
    # "a computational budget of 1.5 billion multiply-adds at inference time" (Section 5).
    assert 1.5e9 <= report.macs < 1.6e9
    # Caffe's bvlc_googlenet: 6,998,552 parameters without the two auxiliary classifiers.
    assert report.inference_params == 6_998_552
    assert [h for h in report.heads] == [("aux1", 0.3), ("aux2", 0.3)]
    aux = {r.name: r for r in report.rows if r.train_only}
    # avgpool 5x5/3 -> 4x4x512, conv 1x1 128, fc 1024, fc 1000 (Section 5), with biases.
    assert aux["aux1"].params == (512 * 128 + 128) + (4 * 4 * 128 * 1024 + 1024) + (
        1024 * 1000 + 1000
    )
    assert aux["aux2"].params == aux["aux1"].params + 16 * 128
