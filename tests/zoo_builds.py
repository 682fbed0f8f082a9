"""One build per zoo spec and test process, shared by the test files that need full-size
models (test_flax_backend.py, test_zoo_modern.py, test_torchvision_logits.py); conftest's
`zoo-NAME` pytest-xdist groups keep a spec's tests in one worker."""

from __future__ import annotations

import functools

from flax import nnx

import netspec

from .conftest import SPECS


@functools.cache
def built(name: str) -> tuple[netspec.Compiled, nnx.Module]:
    """The compiled zoo spec `name` and its model built with seed 0 (do not change it: clone)."""
    compiled = netspec.compile(SPECS / f"{name}.yaml")
    return compiled, compiled.build(seed=0)
