"""`training.workers: auto` picks the data threads from the cores this process may use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from netspec.errors import SpecError
from netspec.load import load_yaml
from netspec.train.config import MAX_AUTO_WORKERS, load_training_config, worker_count

from .conftest import ROOT


def config(text: str):
    return load_training_config(load_yaml(f"training:\n{text}", "spec.yaml"))


def test_auto_is_the_default_and_follows_the_affinity_mask():
    assert config("  epochs: 1\n").workers == "auto"
    cores = len(os.sched_getaffinity(0))
    assert worker_count("auto") == max(1, min(cores, MAX_AUTO_WORKERS))
    assert worker_count(config("  workers: 3\n").workers) == 3
    assert worker_count(0) == 0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_auto_on_one_allowed_core_is_one_thread():
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from netspec.train.config import worker_count; print(worker_count('auto'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"


def test_a_word_other_than_auto_is_refused_at_its_line():
    with pytest.raises(SpecError) as error:
        config("  epochs: 1\n  workers: many\n")
    assert error.value.location.line == 3
