"""SingleTrainer on tiny real Keras models."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from workers.training.interface import EpochRecord, NullObserver, ReplicaSpec
from workers.training.single import SingleTrainer
from workers.training.single_steps import dense_gradient
from workers.training.training_plan import TrainingPlan
from workers.workloads.base import Dataset


class TinyWorkload:
    """3-class Dense classifier with dropout on 24 random points (integer or one-hot labels)."""

    name = "tiny"
    num_classes = 3

    def __init__(self, *, one_hot: bool = True, val: bool = True, fail_on_seed: int | None = None) -> None:
        self.loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
        self.default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 0.05, "batch_size": 8}
        rng = np.random.default_rng(0)
        x = rng.normal(size=(30, 4)).astype(np.float32)
        labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
        y = np.eye(3, dtype=np.float32)[labels] if one_hot else labels
        self._ds = Dataset(x[:24], y[:24], x[24:] if val else None, y[24:] if val else None)
        self.fail_on_seed = fail_on_seed

    def dataset(self) -> Dataset:
        return self._ds

    def build_model(self) -> Any:
        if self.fail_on_seed is not None and keras.random.randint((), 0, 10**6) is not None:
            # A deliberately broken model for one seed: record the error, go on with the next replica.
            seed = int(np.random.get_state()[1][0])  # type: ignore[index]
            if seed == self.fail_on_seed:
                raise RuntimeError("boom in build_model")
        return keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, activation="tanh"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )


class RegressionWorkload:
    name = "reg"
    num_classes = 0
    loss = "mse"
    default_params: dict[str, Any] = {"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 16}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(16, 3)).astype(np.float32)
        return Dataset(x, (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32))[:, None])

    def build_model(self) -> Any:
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])


class RecordingObserver:
    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[list[tuple[Hashable, EpochRecord]]] = []
        self.stop_after = stop_after

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        self.calls.append(list(records))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.calls) >= self.stop_after


def _losses(result: Any) -> list[float]:
    return [e.loss for e in result.epochs]


@pytest.fixture(scope="module")
def trainer() -> SingleTrainer:
    return SingleTrainer()


def test_records_and_determinism(trainer: SingleTrainer) -> None:
    w = TinyWorkload()
    reps = [
        ReplicaSpec("a", {}, init_seed=1, data_seed=2),
        ReplicaSpec(
            "b", {}, init_seed=1, data_seed=2
        ),  # same seeds: the cached step must give the same curve
        ReplicaSpec("c", {}, init_seed=5, data_seed=2),
        ReplicaSpec("d", {}, init_seed=1, data_seed=9),
    ]
    a, b, c, d = trainer.train(w, reps, 3, NullObserver())
    assert [r.status for r in (a, b, c, d)] == ["completed"] * 4
    assert [e.epoch for e in a.epochs] == [0, 1, 2, 3]
    first = a.epochs[0]
    assert first.running_loss is None and first.grad_norm is None
    assert first.learning_rate == pytest.approx(0.05)
    assert all(e.running_loss is not None and e.grad_norm and e.grad_norm > 0 for e in a.epochs[1:])
    assert all(e.val_loss is not None and e.val_accuracy is not None for e in a.epochs)
    assert all(0 <= (e.accuracy or 0) <= 1 for e in a.epochs)
    assert a.epochs == b.epochs
    assert _losses(c)[0] != _losses(a)[0]  # different init
    assert _losses(d)[0] == _losses(a)[0] and _losses(d)[1:] != _losses(a)[1:]  # same init, other order
    # A fresh trainer (no cache) reproduces the cached run exactly.
    (fresh,) = SingleTrainer().train(w, [reps[0]], 3, NullObserver())
    assert fresh.epochs == a.epochs


def test_integer_labels_and_regression(trainer: SingleTrainer) -> None:
    (r,) = trainer.train(
        TinyWorkload(one_hot=False, val=False), [ReplicaSpec(0, {}, 0, 0)], 2, NullObserver()
    )
    assert r.status == "completed" and r.epochs[-1].accuracy is not None
    assert r.epochs[-1].val_loss is None
    (g,) = trainer.train(RegressionWorkload(), [ReplicaSpec(0, {}, 0, 0)], 3, NullObserver())
    assert g.status == "completed" and all(e.accuracy is None for e in g.epochs)
    assert g.epochs[-1].loss < g.epochs[0].loss


def test_nonfinite_stops_the_replica(trainer: SingleTrainer) -> None:
    (r,) = trainer.train(
        RegressionWorkload(), [ReplicaSpec(0, {"learning_rate": 1e6}, 0, 0)], 30, NullObserver()
    )
    assert r.status == "nonfinite"
    assert len(r.epochs) < 31 and not math.isfinite(r.epochs[-1].loss)
    assert all(math.isfinite(e.loss) for e in r.epochs[:-1])


def test_error_in_one_replica_is_recorded_and_the_next_trains(trainer: SingleTrainer) -> None:
    w = TinyWorkload(fail_on_seed=7)
    bad, good = trainer.train(w, [ReplicaSpec("x", {}, 7, 0), ReplicaSpec("y", {}, 8, 0)], 2, NullObserver())
    assert bad.status == "error" and "boom in build_model" in (bad.error or "")
    assert "RuntimeError" in (bad.traceback or "") and "build_model" in (bad.traceback or "")
    assert good.status == "completed" and len(good.epochs) == 3


def test_observer_calls_and_cancellation(trainer: SingleTrainer) -> None:
    obs = RecordingObserver()
    trainer.train(TinyWorkload(), [ReplicaSpec("k", {}, 0, 0)], 2, obs)
    assert [[(k, rec.epoch) for k, rec in call] for call in obs.calls] == [[("k", 0)], [("k", 1)], [("k", 2)]]
    stop = RecordingObserver(stop_after=2)
    first, second = trainer.train(
        TinyWorkload(), [ReplicaSpec(1, {}, 0, 0), ReplicaSpec(2, {}, 1, 0)], 5, stop
    )
    assert first.status == "cancelled" and len(first.epochs) == 2
    assert second.status == "cancelled" and second.epochs == []


def test_step_losses_are_downsampled() -> None:
    w = TinyWorkload()
    (r,) = SingleTrainer(plan=TrainingPlan(record_steps=True)).train(
        w, [ReplicaSpec(0, {"batch_size": 1}, 0, 0)], 25, NullObserver()
    )
    steps = [s for s, _ in r.step_losses]
    assert steps[0] == 0 and len(steps) <= 500 and steps == sorted(steps)
    assert steps[1] - steps[0] == math.ceil(25 * 24 / 500)


def test_schedules_and_plateau_show_in_recorded_lr() -> None:
    w = TinyWorkload()
    t = SingleTrainer(
        plan=TrainingPlan.from_spec(
            {
                "schedule_options": {
                    "decay": 0.5,
                    "plateau_patience": 1,
                    "plateau_factor": 0.5,
                    "plateau_monitor": "loss",
                    "plateau_min_lr": 0.0,
                }
            }
        )
    )
    (inv,) = t.train(w, [ReplicaSpec(0, {"schedule": "inverse_time"}, 0, 0)], 2, NullObserver())
    # batch 8 on 24 samples: 3 steps per epoch; epoch e's last update is step 3e - 1.
    assert [e.learning_rate for e in inv.epochs] == pytest.approx([0.05, 0.05 / 2, 0.05 / 3.5])
    (plat,) = t.train(
        w, [ReplicaSpec(0, {"schedule": "reduce_on_plateau", "learning_rate": 1e-9}, 0, 0)], 4, NullObserver()
    )
    assert [e.learning_rate for e in plat.epochs] == pytest.approx([1e-9, 1e-9, 1e-9, 5e-10, 2.5e-10])


def test_embedding_gradient_is_made_dense() -> None:
    """An id seen twice in a batch: the gradient row is the sum, and its norm that of the sum."""
    emb = keras.layers.Embedding(4, 2)
    emb.build((None, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(
            emb(tf.constant([[1, 1, 2]])) * tf.constant([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
        )
    (g,) = tape.gradient(loss, emb.trainable_variables)
    assert isinstance(g, tf.IndexedSlices)
    dense = dense_gradient(g)
    np.testing.assert_allclose(dense.numpy(), [[0, 0], [4, 6], [5, 6], [0, 0]])
    assert float(tf.linalg.global_norm([dense])) == pytest.approx(np.sqrt(16 + 36 + 25 + 36))
