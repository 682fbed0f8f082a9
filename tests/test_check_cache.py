"""`netspec compile` caches a passed Flax check, so an unchanged spec is not re-traced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

LENET = (ROOT / "specs" / "lenet5.yaml").read_text(encoding="utf-8")
COMPILE_AND_REPORT = (
    "import sys; from netspec.cli import main\n"
    "try:\n    main(['compile', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
    "sys.stderr.write('jax imported: ' + str('jax' in sys.modules))"
)


def compile_spec(spec: Path, cache: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NETSPEC_CACHE": cache}
    return subprocess.run(
        [sys.executable, "-c", COMPILE_AND_REPORT, str(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_second_compile_reuses_the_check_without_importing_jax(tmp_path):
    spec = tmp_path / "lenet.yaml"
    spec.write_text(LENET, encoding="utf-8")
    cache = str(tmp_path / "cache")
    first = compile_spec(spec, cache)
    assert "checked against the Flax module: " in first.stdout
    assert "jax imported: True" in first.stderr
    second = compile_spec(spec, cache)
    assert (
        "checked against the Flax module (cached): 7 layers, 61,706 parameters" in second.stdout
    )  # C1..output
    assert "jax imported: False" in second.stderr
    # Any change to the spec is a new key: the check runs again.
    spec.write_text(LENET.replace("num_classes: 10", "num_classes: 12"), encoding="utf-8")
    third = compile_spec(spec, cache)
    assert "jax imported: True" in third.stdout + third.stderr
    assert "(cached)" not in third.stdout


def test_damaged_cache_entry_is_checked_again_and_rewritten(tmp_path):
    spec = tmp_path / "lenet.yaml"
    spec.write_text(LENET, encoding="utf-8")
    cache = tmp_path / "cache"
    compile_spec(spec, str(cache))
    (entry,) = (cache / "checks").iterdir()
    entry.write_text("{not json", encoding="utf-8")
    again = compile_spec(spec, str(cache))
    assert "jax imported: True" in again.stderr
    assert json.loads(entry.read_text(encoding="utf-8"))["params"] == 61_706


def test_cache_off_always_checks(tmp_path):
    spec = tmp_path / "lenet.yaml"
    spec.write_text(LENET, encoding="utf-8")
    for _ in range(2):
        result = compile_spec(spec, "off")
        assert "jax imported: True" in result.stderr
        assert "(cached)" not in result.stdout
