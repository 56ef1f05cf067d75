"""workers/training/packs/replicas.py: one replica of a pack on the host side (its lr table, batch
order, records and reduce-on-plateau), by the single trainer's rules."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest

from service.core.spec import ScheduleOptions
from workers.training.data_order import BatchOrder
from workers.training.interface import EpochRecord, ReplicaSpec
from workers.training.packs.evaluation import EvalResult
from workers.training.packs.replicas import EpochTotals, PackReplica
from workers.training.training_plan import TrainingPlan


class _Workload:
    default_params: dict[str, Any] = {"batch_size": 4, "learning_rate": 0.5}


def _replica(plan: TrainingPlan | None = None, **params: Any) -> PackReplica:
    spec = ReplicaSpec("k", params, init_seed=1, data_seed=9)
    return PackReplica.prepare(spec, _Workload(), 10, plan or TrainingPlan(), epochs=3)


def test_prepare_takes_the_workloads_defaults_and_a_constant_lr_table() -> None:
    r = _replica(learning_rate=0.1)
    assert r.params == {"batch_size": 4, "learning_rate": 0.1}  # the replica's params win
    assert r.order.steps_per_epoch == 3 and r.order.batch_size == 4
    expected = BatchOrder(10, 4, 9).next_epoch()
    assert all(np.array_equal(a, b) for a, b in zip(r.order.next_epoch(), expected, strict=True))
    assert r.lr_table.dtype == np.float32 and r.lr_table.tolist() == pytest.approx([0.1] * 9)
    assert r.plateau is None and r.plateau_lr == pytest.approx(0.1)
    assert (r.result.key, r.result.status, r.training) == ("k", "completed", True)
    assert r.learning_rates(3, 3).tolist() == pytest.approx([0.1] * 3)


def test_a_schedule_is_tabulated_once_with_keras_own_schedule() -> None:
    r = _replica(learning_rate=0.1, schedule="cosine")
    cosine = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=9, alpha=0.0)
    table = [float(keras.ops.convert_to_numpy(cosine(s))) for s in range(9)]
    assert r.lr_table.tolist() == pytest.approx(table, rel=1e-6)
    assert r.learning_rates(3, 3).tolist() == pytest.approx(table[3:6], rel=1e-6)
    unshuffled = _replica(shuffle=False)
    assert [b.tolist() for b in unshuffled.order.next_epoch()] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_reduce_on_plateau_follows_the_monitored_loss_between_epochs() -> None:
    plan = TrainingPlan(schedule_options=ScheduleOptions(plateau_patience=1, plateau_factor=0.5))
    r = _replica(plan, learning_rate=0.2, schedule="reduce_on_plateau")
    assert r.plateau is not None
    rec = EpochRecord(1, 1.0, None, None, 2.0, None, 0.2, None)
    r.follow_plateau(rec, "val_loss")  # the first value is the best so far
    assert r.plateau_lr == pytest.approx(0.2)
    r.follow_plateau(EpochRecord(2, 0.1, None, None, 2.5, None, 0.2, None), "val_loss")  # val_loss got worse
    assert r.plateau_lr == pytest.approx(0.1)
    assert r.learning_rates(6, 3).tolist() == pytest.approx([0.1] * 3)
    # Without a validation loss the training loss is monitored.
    r.follow_plateau(EpochRecord(3, 0.05, None, None, None, None, 0.1, None), "val_loss")
    assert r.plateau_lr == pytest.approx(0.1)
    constant = _replica()
    constant.follow_plateau(rec, "loss")  # no controller: nothing to do
    assert constant.plateau_lr == pytest.approx(0.5)


def test_records_of_an_epoch_for_active_and_stopped_replicas() -> None:
    r = _replica(learning_rate=0.25)
    ev = EvalResult(loss=[0.7, 0.9], acc_=[0.5, 0.6], val_loss=None, val_acc_=None)
    assert r.initial_record(ev, 1) == EpochRecord(0, 0.9, 0.6, None, None, None, 0.25, None)
    totals = EpochTotals(
        active=np.array([True, False]),
        bad_loss=np.array([0.0, math.inf]),
        sum_loss=np.array([1.5, 4.0]),
        sum_grad_norm=np.array([3.0, 2.0]),
        count=np.array([3.0, 0.0]),
        step_losses=None,
    )
    assert r.epoch_record(1, 0, totals, ev, 0.25) == EpochRecord(1, 0.7, 0.5, 0.5, None, None, 0.25, 1.0)
    # A replica that hit a non-finite mini-batch loss reports that loss, and no evaluation.
    assert r.epoch_record(1, 1, totals, ev, 0.25) == EpochRecord(
        1, math.inf, None, 4.0, None, None, 0.25, 2.0
    )
    r.stop("nonfinite")
    assert r.result.status == "nonfinite" and not r.training


def test_step_losses_keep_every_strideth_and_stop_at_the_first_non_finite() -> None:
    r = _replica()
    r.keep_step_losses(np.array([1.0, 2.0, 3.0, 4.0]), first_step=10, stride=2)
    r.keep_step_losses(np.array([5.0, math.nan, 7.0]), first_step=14, stride=2)
    steps = [(s, v) for s, v in r.result.step_losses]
    assert steps[:3] == [(10, 1.0), (12, 3.0), (14, 5.0)]
    assert len(steps) == 4 and steps[3][0] == 15 and math.isnan(steps[3][1])
