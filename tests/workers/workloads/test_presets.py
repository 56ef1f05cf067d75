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


def test_bad_params_are_rejected_with_the_valid_ones() -> None:
    with pytest.raises(NotFound, match="sensor_lstm"):
        build_preset("nope", {})
    with pytest.raises(InvalidSpec, match="valid parameters: n_train"):
        build_preset("sensor_lstm", {"n_trian": 5})
    with pytest.raises(InvalidSpec, match="integer labels|one_hot"):
        build_preset("pixel_color", {"labels": "words"})
