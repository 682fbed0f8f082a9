"""Run-directory artifacts: metrics log, curves, confusion matrix, TensorBoard events, JSON files.

Written files are checked independently of the writer: PNGs by signature and Pillow, TensorBoard
events by a TFRecord reader with its own CRC-32C and the Event protobuf.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netspec.train import artifacts
from netspec.train.artifacts import (
    REQUIRED_KEYS,
    MetricsLog,
    TensorBoard,
    confusion_matrix,
    load_class_names,
    load_json,
    plot_confusion_matrix,
    plot_curves,
    save_class_names,
    save_json,
)

from .conftest import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record(epoch: int, **extra: float) -> dict:
    """A complete metrics record whose values depend on the epoch."""
    values = {
        "train_loss": 2.0 / epoch,
        "train_acc": 0.5 + 0.1 * epoch,
        "val_loss": 2.5 / epoch,
        "val_acc": 0.4 + 0.1 * epoch,
        "lr": 0.1 * 0.5**epoch,
        "seconds": 10.0 + epoch,
        "images_per_sec": 1000.0 + epoch,
    }
    return {"epoch": epoch, **values, **extra}


def assert_only(folder: Path, *names: str) -> None:
    """`folder` holds exactly `names`: no temp files were left behind."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def assert_png(path: Path, min_bytes: int = 10_000) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > min_bytes
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


# --- MetricsLog -------------------------------------------------------------------------------


def test_metrics_log_round_trip(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    assert log.read() == []
    records = [record(e, val_top5=0.9) for e in (1, 2, 3)]
    for r in records:
        log.append(r)
    assert log.read() == records
    assert MetricsLog(tmp_path / "metrics.jsonl").read() == records
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert set(REQUIRED_KEYS) <= set(json.loads(lines[0]))


def test_metrics_log_accepts_numpy_scalars(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1, "train_loss": np.float32(0.5), "lr": np.array(0.25)})
    assert log.read() == [{"epoch": 1, "train_loss": 0.5, "lr": 0.25}]


def test_metrics_log_requires_an_integer_epoch(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    with pytest.raises(ValueError, match="epoch"):
        log.append({"train_loss": 1.0})
    with pytest.raises(ValueError, match="epoch"):
        log.append({"epoch": "1"})
    assert not log.path.exists()


def test_torn_last_line_is_ignored_then_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    log.append(record(1))
    log.append(record(2))
    line = json.dumps(record(3))
    with path.open("a") as f:  # a crash half way through appending epoch 3
        f.write(line[: len(line) // 2])
    assert [r["epoch"] for r in log.read()] == [1, 2]

    resumed = MetricsLog(path)
    resumed.append(record(3))
    assert resumed.read() == [record(1), record(2), record(3)]
    assert path.read_text().endswith("}\n")


def test_a_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        MetricsLog(path).read()


def test_truncate_to_keeps_the_first_epochs(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for e in range(1, 6):
        log.append(record(e))
    with log.path.open("a") as f:
        f.write('{"epoch": 6, "train_lo')
    log.truncate_to(3)
    assert log.read() == [record(1), record(2), record(3)]
    assert log.path.read_text().count("\n") == 3
    log.append(record(4, train_loss=9.0))
    assert [r["epoch"] for r in log.read()] == [1, 2, 3, 4]
    assert log.read()[-1]["train_loss"] == 9.0
    log.truncate_to(0)
    assert log.read() == []
    assert_only(tmp_path, "metrics.jsonl")


def test_truncate_to_replaces_the_file_atomically(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for e in range(1, 4):
        log.append(record(e))
    before = log.path.read_bytes()
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src, dst):
        # At the moment of the swap the old file is still whole and the new one complete.
        assert log.path.read_bytes() == before
        assert [json.loads(x)["epoch"] for x in Path(src).read_text().splitlines()] == [1]
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    log.truncate_to(1)
    [(src, dst)] = replaced
    assert dst == log.path
    assert src.parent == log.path.parent
    assert log.read() == [record(1)]
    assert_only(tmp_path, "metrics.jsonl")


def test_a_failed_rewrite_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for e in range(1, 4):
        log.append(record(e))
    before = log.path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        log.truncate_to(1)
    assert log.path.read_bytes() == before
    assert_only(tmp_path, "metrics.jsonl")


# --- plots ------------------------------------------------------------------------------------


def test_plot_curves_writes_a_png(tmp_path):
    records = [record(e, val_top5=0.8 + 0.01 * e) for e in range(1, 11)]
    plot_curves(records, tmp_path / "curves.png")
    width, height = assert_png(tmp_path / "curves.png")
    assert width > height > 300
    assert_only(tmp_path, "curves.png")


def test_curves_figure_has_loss_and_accuracy_panels():
    records = [record(e, val_top5=0.9) for e in range(1, 6)]
    figure = artifacts.curves_figure(records, title="run 7")
    loss, accuracy = figure.axes
    assert figure.get_suptitle() == "run 7"
    assert (loss.get_title(), loss.get_xlabel(), loss.get_ylabel()) == ("Loss", "epoch", "loss")
    assert (accuracy.get_title(), accuracy.get_xlabel()) == ("Accuracy", "epoch")
    assert accuracy.get_ylabel() == "accuracy"
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "val"]
    legend = [t.get_text() for t in accuracy.get_legend().get_texts()]
    assert legend == ["train", "val", "val top-5"]
    train_loss = loss.get_lines()[0]
    assert list(train_loss.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(train_loss.get_ydata()) == pytest.approx([2.0 / e for e in range(1, 6)])


def test_curves_skip_missing_and_non_finite_values():
    records = [record(1), {**record(2), "val_loss": float("nan")}, {"epoch": 3, "train_loss": 1}]
    loss, accuracy = artifacts.curves_figure(records).axes
    train, val = loss.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3]
    assert list(val.get_xdata()) == [1]
    assert len(accuracy.get_lines()) == 2  # no top-5 line without val_top5


def test_confusion_matrix_matches_a_hand_count():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    predictions = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    expected = np.array(
        [
            [2, 1, 0],  # true 0: predicted 0, 1, 0
            [0, 2, 1],  # true 1: predicted 1, 1, 2
            [1, 0, 1],  # true 2: predicted 2, 0
        ]
    )
    matrix = confusion_matrix(labels, predictions, 3)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(confusion_matrix([], [], 2), np.zeros((2, 2)))


def test_confusion_matrix_has_a_row_and_column_for_absent_classes():
    """Classes 0, 2 and 4 occur nowhere: their rows and columns are there, all zeros."""
    matrix = confusion_matrix(np.array([1, 1, 3]), np.array([1, 3, 3]), 5)
    expected = np.zeros((5, 5), dtype=np.int64)
    expected[1, 1] = expected[1, 3] = expected[3, 3] = 1
    np.testing.assert_array_equal(matrix, expected)


@pytest.mark.parametrize(
    ("labels", "predictions"), [([0, 3], [0, 1]), ([0, 1], [0, -1]), ([0, 1], [0])]
)
def test_confusion_matrix_rejects_bad_input(labels, predictions):
    with pytest.raises(ValueError):
        confusion_matrix(np.array(labels), np.array(predictions), 3)


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    predictions = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 5, 200))
    plot_confusion_matrix(confusion_matrix(labels, predictions, 5), names, tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    assert_only(tmp_path, "cm.png")


def test_confusion_figure_annotates_counts_and_names_classes():
    matrix = np.array([[3, 1], [0, 0]])
    figure = artifacts.confusion_figure(matrix, ["cat", "dog"], title="val")
    axes = figure.axes[0]
    assert axes.get_title() == "val"
    assert sorted(t.get_text() for t in axes.texts) == ["0", "0", "1", "3"]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["cat", "dog"]
    shown = axes.get_images()[0].get_array()
    np.testing.assert_allclose(shown, [[0.75, 0.25], [0.0, 0.0]])


def test_confusion_figure_skips_annotations_for_many_classes():
    n = 40
    figure = artifacts.confusion_figure(np.eye(n, dtype=np.int64), [f"class_{i}" for i in range(n)])
    assert len(figure.axes[0].texts) == 0
    with pytest.raises(ValueError, match="class names"):
        artifacts.confusion_figure(np.eye(3), ["a", "b"])


# --- TensorBoard ------------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecords(path: Path) -> list[bytes]:
    """Payloads of a TFRecord file: length (u64 LE), crc (u32), data, crc (u32); CRCs checked."""
    data = path.read_bytes()
    payloads, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        assert header_crc == masked_crc32c(header)
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert payload_crc == masked_crc32c(payload)
        payloads.append(payload)
        offset += 16 + length
    assert offset == len(data)
    return payloads


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] over every event file in `logdir`."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for payload in tfrecords(path):
            event = Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_crc32c_reference_vector():
    assert crc32c(b"123456789") == 0xE3069283


def test_tensorboard_scalars_per_epoch(tmp_path):
    records = [record(e, val_top5=0.9 + 0.01 * e) for e in (1, 2, 3)]
    board = TensorBoard(tmp_path)
    for r in records:
        board.write_epoch(r)
    board.close()

    scalars = read_scalars(tmp_path / "tensorboard")
    assert set(scalars) == set(artifacts.TENSORBOARD_TAGS)
    for tag, key in artifacts.TENSORBOARD_TAGS.items():
        steps = [step for step, _ in scalars[tag]]
        values = [value for _, value in scalars[tag]]
        assert steps == [1, 2, 3], tag
        assert values == pytest.approx([r[key] for r in records], rel=1e-6), tag


def test_tensorboard_skips_absent_keys(tmp_path):
    with TensorBoard(tmp_path) as board:
        board.write_epoch(record(1))  # fewer than 5 classes: no val_top5
        board.write_epoch({"epoch": 2, "train_loss": 0.5, "val_loss": None})
    scalars = read_scalars(tmp_path / "tensorboard")
    assert "val/top5" not in scalars
    assert scalars["train/loss"] == [(1, 2.0), (2, 0.5)]
    assert [step for step, _ in scalars["val/loss"]] == [1]


def test_tensorboard_purge_step_on_resume(tmp_path):
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    with TensorBoard(tmp_path, purge_step=2) as board:
        board.write_epoch(record(2))
    [path] = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    events = [Event.FromString(p) for p in tfrecords(path)]
    starts = [e.step for e in events if e.session_log.status == SessionLog.START]
    assert starts == [2]


# --- JSON and class names ---------------------------------------------------------------------


def test_json_round_trip_is_pretty_and_atomic(tmp_path):
    data = {"name": "lenet", "accuracy": np.float64(0.5), "shape": np.array([28, 28, 1]), "ü": []}
    path = tmp_path / "run" / "summary.json"
    save_json(path, data)
    assert load_json(path) == {"name": "lenet", "accuracy": 0.5, "shape": [28, 28, 1], "ü": []}
    assert path.read_text(encoding="utf-8").startswith('{\n  "name": "lenet"')
    save_json(path, [1, 2])
    assert load_json(path) == [1, 2]
    assert_only(path.parent, "summary.json")
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_json_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    save_json(path, {"ok": True})
    with pytest.raises(TypeError):
        save_json(path, {"bad": object()})
    assert load_json(path) == {"ok": True}
    assert_only(tmp_path, "a.json")


def test_class_names_round_trip(tmp_path):
    names = ["cat", "dog", "トラ", "sea lion"]
    save_class_names(tmp_path, names)
    assert load_class_names(tmp_path) == names
    assert json.loads((tmp_path / "classes.json").read_text(encoding="utf-8")) == names
    assert_only(tmp_path, "classes.json")


def test_bad_class_names_file_is_reported(tmp_path):
    save_json(tmp_path / "classes.json", {"cat": 0})
    with pytest.raises(ValueError, match="class names"):
        load_class_names(tmp_path)
    with pytest.raises(TypeError):
        save_class_names(tmp_path, ["cat", 1])


def test_import_is_light():
    code = (
        "import sys, netspec.train.artifacts; "
        "print([m for m in ('matplotlib', 'tensorboardX') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
