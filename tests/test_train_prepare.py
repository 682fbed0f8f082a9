"""`train()` = `prepare_run` + `fit`: the spec is compiled once per run, with the data's class
count passed as a value and the training config's dtype; `--set` is parsed once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netspec.compiled as compiled_module
from netspec.errors import SpecError
from netspec.specfile import parse_overrides
from netspec.train.config import split_overrides
from netspec.train.datasets import load_dataset, read_dataset
from netspec.train.loop import TrainOptions, prepare_run, train

from .conftest import ROOT

SPEC = """\
name: small
input: [8, 8, 1]
vars: {num_classes: CLASSES}
layers:
  - conv: conv 3x3 4 same relu
  - flat: flatten
  - fc: dense OUTPUTS
training: {batch_size: 64, epochs: 1, workers: 0EXTRA}
"""
DIGITS = 10


def write(tmp_path: Path, classes: int, dtype: str | None = None, outputs: str = "") -> Path:
    """The small spec with `num_classes: classes`; `outputs` replaces `$num_classes` in the
    last row; `dtype` goes into its training section."""
    text = SPEC.replace("CLASSES", str(classes)).replace("OUTPUTS", outputs or "$num_classes")
    path = tmp_path / "small.yaml"
    path.write_text(text.replace("EXTRA", f", dtype: {dtype}" if dtype else ""))
    return path


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The variable overrides of every spec resolution `netspec.compiled` makes from now on
    (`compile` and `compile_with` both resolve through it)."""
    calls: list[dict] = []
    real = compiled_module.load_and_resolve

    def counting(source, overrides=None):
        calls.append(parse_overrides(overrides))
        return real(source, overrides)

    monkeypatch.setattr(compiled_module, "load_and_resolve", counting)
    return calls


def test_a_whole_run_compiles_the_spec_once(tmp_path, compiles, capsys):
    """The data's class count differs from the spec's and the config sets a dtype: before,
    three compiles (as written, with the dtype, with the class count); now one."""
    spec = write(tmp_path, classes=4, dtype="bfloat16")
    run = tmp_path / "run"
    record = train(TrainOptions(spec=str(spec), out=run, progress=False))
    assert compiles == [{"num_classes": DIGITS}]
    assert type(compiles[0]["num_classes"]) is int  # a value, not "num_classes=10" re-read
    assert record["epoch"] == 1 and np.isfinite(record["train_loss"])
    assert "setting num_classes=10 (the spec says 4)" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["variables"] == {"num_classes": DIGITS}
    assert config["dtype"] == "bfloat16"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["output_shape"][-1] == DIGITS


@pytest.mark.parametrize("classes", [DIGITS, 4])
@pytest.mark.parametrize("dtype", [None, "float16"])
def test_preparing_compiles_once_with_the_class_count_and_dtype(tmp_path, compiles, classes, dtype):
    prepared = prepare_run(TrainOptions(spec=str(write(tmp_path, classes, dtype)), out=tmp_path))
    assert len(compiles) == 1
    assert prepared.compiled.dtype == dtype
    assert prepared.compiled.report.output_shape[2] == DIGITS
    assert prepared.variables == ({} if classes == DIGITS else {"num_classes": DIGITS})
    assert prepared.dataset.train.images.shape[1:] == (8, 8, 1)
    assert prepared.config.dtype == dtype


def test_preparing_touches_no_run_directory(tmp_path, compiles):
    out = tmp_path / "not yet"
    prepare_run(TrainOptions(spec=str(write(tmp_path, DIGITS)), out=out))
    assert not out.exists()


def test_a_set_class_count_is_replaced_by_the_datas(tmp_path, compiles, capsys):
    options = TrainOptions(
        spec=str(write(tmp_path, 4)), out=tmp_path / "run", overrides=["num_classes=7"]
    )
    prepared = prepare_run(options)
    assert prepared.variables == {"num_classes": DIGITS}
    assert compiles == [{"num_classes": DIGITS}]
    assert "setting num_classes=10 (the spec says 7)" in capsys.readouterr().err


def test_a_fixed_output_count_that_differs_from_the_data_is_an_error(tmp_path, compiles):
    spec = write(tmp_path, 4).read_text().replace("vars: {num_classes: 4}\n", "")
    path = tmp_path / "fixed.yaml"
    path.write_text(spec.replace("$num_classes", "4"))
    with pytest.raises(SpecError) as error:
        prepare_run(TrainOptions(spec=str(path), out=tmp_path / "run"))
    assert "the data has 10 classes but the network outputs 4" in str(error.value)
    assert "add `vars: {num_classes: ...}`" in str(error.value)
    assert len(compiles) == 1


def test_a_num_classes_variable_the_last_row_ignores_is_an_error(tmp_path, compiles):
    """Setting `num_classes` to the data's count must reach the output; before, such a spec
    trained a 4-way network on 10 classes."""
    with pytest.raises(SpecError) as error:
        prepare_run(TrainOptions(spec=str(write(tmp_path, 4, outputs="4")), out=tmp_path))
    assert "the data has 10 classes but the network outputs 4" in str(error.value)
    assert "use $num_classes in the last dense row" in str(error.value)
    assert compiles == [{"num_classes": DIGITS}]


# ---- `--set`, parsed once -----------------------------------------------------------------


def test_set_pairs_are_parsed_once_into_variables_and_training_fields():
    variables, training = split_overrides(
        ["num_classes=5", "training.epochs=2", "training.normalize.mean=[0.5, 0.25]", "act=relu"]
    )
    assert variables == {"num_classes": 5, "act": "relu"}
    assert training == {"epochs": 2, "normalize.mean": [0.5, 0.25]}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("training.epochs", "--set 'training.epochs': expected NAME=VALUE"),
        ("=3", "--set '=3': expected NAME=VALUE"),
        ("training.normalize.mean=[0.5", "--set training.normalize.mean: cannot read '[0.5'"),
    ],
)
def test_bad_set_pairs_name_themselves(pair, message):
    with pytest.raises(SpecError) as error:
        split_overrides([pair])
    assert str(error.value).startswith(message)


# ---- data read before the model, fitted after ---------------------------------------------


def test_reading_then_fitting_the_data_gives_what_loading_gives():
    raw = read_dataset("digits", seed=3, val_fraction=0.2)
    assert raw.train.images.shape[1:] == (8, 8)  # as read: the model's size is not known yet
    ready = raw.ready((12, 10, 3))
    loaded = load_dataset("digits", (12, 10, 3), seed=3, val_fraction=0.2)
    assert ready.class_names == loaded.class_names == [str(d) for d in range(10)]
    for ours, theirs in ((ready.train, loaded.train), (ready.val, loaded.val)):
        assert np.array_equal(ours.images, theirs.images)
        assert np.array_equal(ours.labels, theirs.labels)
    assert ready.source == loaded.source


def test_an_image_folders_classes_are_known_before_its_files_are_decoded(tmp_path):
    from PIL import Image

    for name in ("cat", "dog", "fox"):
        (tmp_path / name).mkdir()
        for index in range(3):
            Image.new("RGB", (6, 5), (index * 40, 0, 0)).save(tmp_path / name / f"{index}.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    raw = read_dataset(tmp_path)
    assert raw.class_names == ["cat", "dog", "fox"]
    with pytest.raises(SpecError) as error:
        raw.ready((8, 8, 3))
    assert "broken.png" in str(error.value)
    ready = raw.ready((8, 8, 3), skip_bad_images=True)
    assert len(ready.train) + len(ready.val) == 9
    assert [s.split(":")[0] for s in ready.skipped] == [str(tmp_path / "dog" / "broken.png")]
    assert ready.source == f"image folder {tmp_path} (9 images)"


# ---- no core module needs netspec.train -----------------------------------------------------


def test_core_modules_do_not_import_the_training_package(tmp_path):
    code = (
        "import sys, pathlib; import netspec.check, netspec.cli;"
        "netspec.cli.build_parser();"
        f"netspec.cli.write_atomically(pathlib.Path({str(tmp_path / 'out.txt')!r}), 'x');"
        "print(sorted(m for m in sys.modules if m.startswith('netspec.train')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "out.txt").read_text() == "x"
