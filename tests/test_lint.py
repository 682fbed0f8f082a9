"""The code base stays ruff-clean (lint and format), as the project's standards require."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

CHECKED = [
    name
    for name in ("netspec", "tests", "benchmarks", "tools", "examples")
    if (ROOT / name).exists()
]


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *CHECKED],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize("args", [("check",), ("format", "--check")])
def test_ruff_clean(args):
    result = ruff(*args)
    assert result.returncode == 0, result.stdout + result.stderr
