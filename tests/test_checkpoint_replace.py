"""Saving a checkpoint again at the same step never loses the one already there."""

from __future__ import annotations

import numpy as np
import orbax.checkpoint as ocp
import pytest

from netspec.train.checkpoint import _options, _recover_replaced, _Writer


def manager(folder):
    return ocp.CheckpointManager(folder.absolute(), options=_options())


def saved(value: float):
    return ocp.args.StandardSave({"w": np.full(3, value, np.float32)})


def restored(folder, step: int) -> float:
    with manager(folder) as m:
        tree = m.restore(step, args=ocp.args.StandardRestore({"w": np.zeros(3, np.float32)}))
    return float(tree["w"][0])


def test_an_interrupted_replacement_keeps_the_old_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    first = manager(folder)
    writer = _Writer(first)
    writer.save(5, saved(1.0))
    writer.finish()  # written in the background until now
    first.close()

    second = manager(folder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the new step 5 is written

    second.save = interrupted
    with pytest.raises(KeyboardInterrupt):
        _Writer(second).save(5, saved(2.0))
    assert not (folder / "5").exists()  # moved aside, the new one never finished

    _recover_replaced(folder.absolute())  # what opening the run's checkpoints does
    assert restored(folder, 5) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_a_completed_replacement_drops_the_old_one(tmp_path):
    folder = tmp_path / "checkpoints"
    for value in (1.0, 2.0):
        with manager(folder) as m:
            writer = _Writer(m)
            writer.save(5, saved(value))
            writer.finish()
    assert restored(folder, 5) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]
