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

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core: XLA's own thread pool in each would only fight the other
    # workers for the same cores (set before anything imports JAX; subprocesses inherit it).
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# With `pytest -n N` (pytest-xdist, `--dist loadgroup`), tests that share an expensive fixture or
# cache run in one worker, so nothing is built twice: each zoo model's Flax tests together, and
# the modules that train a run once for all their tests.
SHARED_MODULE_FIXTURES = {"test_training.py", "test_eval_data.py", "test_googlenet_table.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.name
        params = getattr(getattr(item, "callspec", None), "params", {})
        if module == "test_flax_backend.py" and isinstance(params.get("name"), str):
            item.add_marker(pytest.mark.xdist_group(f"zoo-{params['name']}"))
        elif module in SHARED_MODULE_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(module))
