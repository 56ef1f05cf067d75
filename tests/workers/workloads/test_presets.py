"""Every preset builds, trains a few epochs at tiny sizes, and is deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core.errors import InvalidSpec, NotFound
from service.core.workloads import PRESETS
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.single import SingleTrainer
from workers.workloads.registry import build_preset

TINY: dict[str, dict[str, Any]] = {
    "sensor_lstm": {"n_train": 12, "n_val": 6, "timesteps": 10, "units": 4},
    "cos_arccos": {"n_train": 8, "timesteps": 10, "units": 4},
    "sequence_rnn": {"n_train_per_class": 3, "n_val_per_class": 1, "timesteps": 10, "units": 4},
    "pixel_color": {"image_size": 4, "n_train_per_class": 8, "n_val_per_class": 4, "units": 5},
    "least_squares": {"n": 16, "d": 4},
}


@pytest.fixture(scope="module")
def trainer() -> SingleTrainer:
    return SingleTrainer()


def test_catalogue_covers_every_preset() -> None:
    assert set(TINY) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(TINY))
def test_preset_trains_and_is_deterministic(name: str, trainer: SingleTrainer) -> None:
    w = build_preset(name, TINY[name])
    info = PRESETS[name]
    assert w.num_classes == info.num_classes and w.name == name
    ds = w.dataset()
    assert ds.x_train.dtype == np.float32 and len(ds.y_train) == ds.n_train
    again = build_preset(name, TINY[name]).dataset()
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = build_preset(name, {**TINY[name], "data_seed": 1}).dataset()
    assert not np.array_equal(ds.x_train, other.x_train)
    reps = [ReplicaSpec(i, {"batch_size": 4}, init_seed=s, data_seed=3) for i, s in enumerate((0, 0, 1))]
    a, b, c = trainer.train(w, reps, 2, NullObserver())
    assert a.status == b.status == c.status == "completed", (a.error, a.traceback)
    assert len(a.epochs) == 3
    assert a.epochs == b.epochs
    assert [e.loss for e in a.epochs] != [e.loss for e in c.epochs]


def test_sensor_lstm_shapes_match_the_report() -> None:
    ds = build_preset("sensor_lstm", {}).dataset()
    assert ds.x_train.shape == (98, 100, 1) and ds.y_train.shape == (98, 6)
    assert sorted(ds.y_train.sum(axis=0).astype(int).tolist(), reverse=True) == [17, 17, 16, 16, 16, 16]
    assert ds.x_val is None


def test_pixel_color_labels_and_model() -> None:
    w = build_preset("pixel_color", {"image_size": 6, "n_train_per_class": 5, "n_val_per_class": 2})
    ds = w.dataset()
    assert ds.x_train.shape == (10, 6, 6, 3) and ds.x_val is not None and ds.x_val.shape == (4, 6, 6, 3)
    red = ds.x_train[:, 3, 3, 0] == 1.0
    assert np.array_equal(red, ds.y_train == 0)
    model = w.build_model()
    assert model.output_shape == (None, 3) and w.loss == "sparse_categorical_crossentropy"
    hot = build_preset("pixel_color", {"image_size": 6, "n_train_per_class": 5, "labels": "one_hot"})
    assert hot.dataset().y_train.shape == (10, 3) and hot.loss == "categorical_crossentropy"


def test_bad_params_are_rejected_with_the_valid_ones() -> None:
    with pytest.raises(NotFound, match="sensor_lstm"):
        build_preset("nope", {})
    with pytest.raises(InvalidSpec, match="valid parameters: n_train"):
        build_preset("sensor_lstm", {"n_trian": 5})
    with pytest.raises(InvalidSpec, match="integer labels|one_hot"):
        build_preset("pixel_color", {"labels": "words"})


def _gd_losses(lr: float, epochs: int = 50) -> list[float]:
    w = build_preset("least_squares", {})
    (r,) = SingleTrainer().train(w, [ReplicaSpec(0, {"learning_rate": lr}, 0, 0)], epochs, NullObserver())
    return [e.loss for e in r.epochs]


def test_least_squares_edge_of_stability() -> None:
    w = build_preset("least_squares", {})
    assert w.edge_lr == pytest.approx(2.0)  # type: ignore[attr-defined]
    ds = w.dataset()
    hessian = 2.0 / ds.n_train * ds.x_train.astype(np.float64).T @ ds.x_train.astype(np.float64)
    assert np.linalg.eigvalsh(hessian).max() == pytest.approx(1.0, rel=1e-5)
    assert w.default_params["batch_size"] == ds.n_train
    stable = _gd_losses(0.9 * w.edge_lr)  # type: ignore[attr-defined]
    assert stable[-1] < 1e-3 * stable[0]
    unstable = _gd_losses(1.1 * w.edge_lr)  # type: ignore[attr-defined]
    assert not np.isfinite(unstable[-1]) or unstable[-1] > 10 * unstable[0]


def test_sensor_lstm_is_standardised_and_its_classes_overlap_but_differ() -> None:
    """Scaled like a user would feed it; neighbouring surfaces overlap in load alone, so it is not trivial."""
    ds = build_preset("sensor_lstm", {}).dataset()
    assert abs(float(ds.x_train.mean())) < 0.2 and 0.5 < float(ds.x_train.std()) < 1.5
    level = ds.x_train.mean(axis=(1, 2))
    labels = ds.y_train.argmax(axis=1)
    means = [float(level[labels == k].mean()) for k in range(6)]
    assert means == sorted(means) and min(np.diff(means)) > 0.2  # base loads 0.2 A apart, scaled by 0.4 A
    # The per-sequence load jitter makes neighbours overlap: load alone does not separate every pair.
    ranges = [(level[labels == k].min(), level[labels == k].max()) for k in range(6)]
    assert any(ranges[k][1] > ranges[k + 1][0] for k in range(5))


def test_pixel_color_byte_scale_is_the_same_images_times_255() -> None:
    params = {"image_size": 6, "n_train_per_class": 5, "n_val_per_class": 2}
    unit = build_preset("pixel_color", params).dataset()
    byte = build_preset("pixel_color", {**params, "pixel_scale": "byte"}).dataset()
    np.testing.assert_allclose(byte.x_train, unit.x_train * 255, rtol=1e-6)
    assert byte.x_val is not None and float(byte.x_val.max()) <= 255.0
    np.testing.assert_array_equal(byte.y_train, unit.y_train)
    red = byte.x_train[byte.y_train == 0][:, 3, 3, :]
    assert (red == np.array([255.0, 0.0, 0.0], dtype=np.float32)).all()
