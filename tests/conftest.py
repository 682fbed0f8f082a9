"""Shared fixtures: paths to the repository's specs; netspec's caches kept per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# Tests never read or fill the user's ~/.cache/netspec: a stale cached check would hide a bug.
os.environ["NETSPEC_CACHE"] = tempfile.mkdtemp(prefix="netspec-test-cache-")


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
