"""benchmarks/end_to_end.py's parts, without training: the Keras and PyTorch Inception10 have
netspec's parameter count, the CIFAR-format writer's files read back through netspec's loader,
the `--set` values netspec trains with are the options the other frameworks get, and each
framework's loader yields batches of the right shape."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import e2e_data  # noqa: E402
import end_to_end  # noqa: E402

import netspec  # noqa: E402
from netspec.train.datasets import load_dataset, read_dataset  # noqa: E402

INCEPTION10 = ROOT / "specs" / "inception10.yaml"


def job(data: Path, **changes) -> dict:
    values = {
        "workload": "cifar",
        "data": str(data),
        "epochs": 3,
        "batch": 8,
        "lr": 0.01,
        "momentum": 0.9,
        "workers": 0,
        "seed": 0,
    }
    return {**values, **changes}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> tuple[Path, tuple[np.ndarray, np.ndarray]]:
    root = tmp_path_factory.mktemp("cifar")
    folder = e2e_data.write_cifar(root, train=53, val=11, seed=3)
    return folder, e2e_data.cifar_images(53 + 11, seed=3)


def test_cifar_files_read_back_by_netspec(cifar) -> None:
    folder, (images, labels) = cifar
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta",
        *(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
    ]
    raw = read_dataset(folder.parent)  # found as <root>/cifar-10-batches-py
    assert raw.class_names == e2e_data.CIFAR_NAMES
    assert raw.train.images.shape == (53, 32, 32, 3) and raw.train.images.dtype == np.uint8
    assert raw.val.images.shape == (11, 32, 32, 3)
    np.testing.assert_array_equal(raw.train.images, images[:53])
    np.testing.assert_array_equal(raw.train.labels, labels[:53])
    np.testing.assert_array_equal(raw.val.images, images[53:])
    np.testing.assert_array_equal(raw.val.labels, labels[53:])
    assert load_dataset(folder, (32, 32, 3)).train.images.shape == (53, 32, 32, 3)
    # the Keras and torch runs read the same arrays
    (train_x, _), (_, val_y) = e2e_data.read_cifar(folder)
    np.testing.assert_array_equal(train_x, raw.train.images)
    np.testing.assert_array_equal(val_y, raw.val.labels)
    assert set(np.unique(labels)) == set(range(10))


def test_netspec_options_match_the_others(cifar) -> None:
    from netspec.train.config import load_training_config, split_overrides
    from netspec.train.rundir import read_spec_data

    for workload in ("cifar", "folder"):
        overrides = end_to_end.netspec_overrides(job(cifar[0], workload=workload))
        variables, training = split_overrides(overrides)
        assert not variables
        config = load_training_config(read_spec_data(str(INCEPTION10)), None, training)
        assert config.optimizer.name == "sgd" and config.optimizer.options == {"momentum": 0.9}
        assert config.learning_rate == 0.01 and config.schedule.name == "constant"
        assert config.weight_decay == 0 and config.epochs == 3 and config.batch_size == 8
        assert config.augment.horizontal_flip and config.workers == 0
        if workload == "cifar":
            assert config.augment.random_crop == 4 and config.augment.random_resized_crop is None
            assert config.normalize.mean == list(e2e_data.CIFAR_MEAN)
        else:
            assert config.augment.random_resized_crop == (0.08, 1.0)
            assert config.normalize.std == list(e2e_data.IMAGENET_STD)


def test_torch_inception10_matches_netspec(cifar) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    import e2e_torch

    expected = netspec.compile(str(INCEPTION10)).report.params
    assert expected == 120_234
    model = e2e_torch.build("cifar", 10)
    assert e2e_torch.count(model) == expected
    train, val = e2e_torch.loaders(job(cifar[0]))
    images, labels = next(iter(train))
    assert tuple(images.shape) == (8, 3, 32, 32) and tuple(labels.shape) == (8,)
    assert len(train) == 53 // 8 and len(val) == 2
    assert tuple(model.eval()(images).shape) == (8, 10)


def test_keras_inception10_matches_netspec(cifar) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the Keras side runs on the JAX backend")
    import e2e_keras

    # Shapes only: initialising the weights compiles a random program per shape (~1 s each
    # on a 2-core CPU), which the parameter count does not need.
    with keras.StatelessScope(initialize_variables=False):
        model = e2e_keras.build("cifar", 10)
        params = e2e_keras.count(model)
    assert params == netspec.compile(str(INCEPTION10)).report.params
    train, val = e2e_keras.splits(job(cifar[0]), heads=1)
    x, y = train[0]
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32 and y.shape == (8,)
    assert len(train) == 53 // 8 and len(val) == 2 and val[1][0].shape == (3, 32, 32, 3)
    box = e2e_keras.resized_crop_box(np.random.default_rng(0), 500, 375)
    assert 0 <= box[0] < box[2] <= 500 and 0 <= box[1] < box[3] <= 375
