"""The paper-style table at any width: compact at 80 columns, output sizes never cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import netspec
from netspec.table import render_report

from .conftest import ROOT, SPECS
from .test_googlenet_table import TABLE_1


def row_lines(text: str, names: list[str]) -> dict[str, str]:
    """The first line of each named row (its name is the first word)."""
    lines = {}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in names and words[0] not in lines:
            lines[words[0]] = line
    return lines


@pytest.mark.parametrize("width", [80, 72])
def test_googlenet_reads_at_narrow_widths_with_the_papers_output_sizes(width):
    text = render_report(netspec.analyze_spec(SPECS / "googlenet.yaml"), width)
    assert max(map(len, text.splitlines())) <= width
    names = [name for name, *_ in TABLE_1]
    lines = row_lines(text, names)
    assert set(lines) == set(names)  # every row name whole, none folded
    for name, (h, w, c), *_ in TABLE_1:
        assert f" {h}x{w}x{c} " in lines[name] + " ", name


def test_inception_arguments_stay_on_the_row_at_80_columns():
    text = render_report(netspec.analyze_spec(SPECS / "googlenet.yaml"), 80)
    # The paper's six columns for 4e (Table 1): 256 160 320 32 128 128.
    assert "inception 256 160 320 32 128 128" in row_lines(text, ["inception_4e"])["inception_4e"]


@pytest.mark.parametrize("name", netspec.zoo_names())
def test_every_zoo_table_fits_80_columns_without_cutting_numbers(name):
    report = netspec.analyze_spec(name)
    text = render_report(report, 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "…" not in text
    body = " ".join(text.split())
    for row in report.rows:
        h, w, c = row.output_shape
        assert f"{h}x{w}x{c}" in body
    assert f"{report.params:,}" in text


def test_wide_layout_when_there_is_room():
    text = render_report(netspec.analyze_spec(SPECS / "googlenet.yaml"), None)
    assert "patch/stride" in text and "args" in text


def run_cli(*argv: str, columns: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": columns}
    return subprocess.run(
        [sys.executable, "-m", "netspec", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_the_command_fits_columns_and_wide_overrides_it():
    narrow = run_cli("compile", "googlenet", "--no-check", columns="80").stdout
    assert max(map(len, narrow.splitlines())) <= 80
    assert "patch/stride" not in narrow
    wide = run_cli("compile", "googlenet", "--no-check", "--wide", columns="80").stdout
    assert "patch/stride" in wide
    assert max(map(len, wide.splitlines())) > 80


def test_compiled_prints_as_its_table_and_summary_stays_json():
    net = netspec.compile(SPECS / "lenet5.yaml")
    text = str(net)
    # LeNet-5 (LeCun et al. 1998): C3 maps 6 -> 16 with 5x5 kernels: 6*16*25 + 16 = 2,416.
    assert "C3" in text and "10x10x16" in text and "2.42K" in text
    assert "61,706" in text  # the published total for this variant (conv C3, full)
    assert max(map(len, net.table(60).splitlines())) <= 60
    assert json.loads(json.dumps(net.summary))["params"] == 61_706
    assert str(net.summary) == text
