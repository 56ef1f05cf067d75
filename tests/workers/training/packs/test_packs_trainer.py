"""PackTrainer: the same training as each replica alone, on tiny real Keras models.

The reference is ``SingleTrainer`` (plain Keras model + Keras optimizer, one
replica at a time); the workloads and replicas are in ``pack_workloads``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.workers.training.pack_workloads import (
    BAD,
    EPOCHS,
    OTHERS,
    TARGET,
    Conv,
    Recorder,
    TinyDense,
    TinyLongLSTM,
    TinyLSTM,
    max_rel,
)
from workers.training.interface import NullObserver, ReplicaResult, ReplicaSpec
from workers.training.packs import PackTrainer, can_pack
from workers.training.packs.sizing import XLA_CPU_MAX_BATCH, XLA_CPU_PACK_CAP
from workers.training.single import SingleTrainer
from workers.training.training_plan import TrainingPlan


@pytest.fixture(scope="module")
def lstm() -> TinyLSTM:
    return TinyLSTM()


@pytest.fixture(scope="module")
def single_target(lstm: TinyLSTM) -> ReplicaResult:
    return SingleTrainer().train(lstm, [TARGET], EPOCHS, NullObserver())[0]


def test_replica_in_pack_equals_replica_alone(lstm: TinyLSTM, single_target: ReplicaResult) -> None:
    obs = Recorder()
    results = PackTrainer().train(lstm, [OTHERS[0], TARGET, OTHERS[1]], EPOCHS, obs)
    assert [r.key for r in results] == ["sgd", "target", "adam-b1"]
    assert all(r.status == "completed" for r in results)
    packed = results[1]
    assert [e.epoch for e in packed.epochs] == list(range(EPOCHS + 1))
    # float32 rounding: measured ~1e-7 here; losses, accuracy, val, grad norm and lr.
    assert max_rel(single_target, packed) < 1e-4
    # One bulk observer call per epoch (epoch 0 included) with every replica.
    assert len(obs.calls) == EPOCHS + 1
    assert all(len(c) == 3 for c in obs.calls)


def test_long_sequence_replica_in_pack_equals_replica_alone() -> None:
    wl = TinyLongLSTM()
    single = SingleTrainer().train(wl, [TARGET], 2, NullObserver())[0]
    packed = PackTrainer().train(wl, [OTHERS[0], TARGET], 2, NullObserver())[1]
    assert packed.status == "completed"
    assert max_rel(single, packed) < 1e-4


def test_nonfinite_replica_stops_alone(lstm: TinyLSTM, single_target: ReplicaResult) -> None:
    results = PackTrainer(plan=TrainingPlan(record_steps=True)).train(
        lstm, [BAD, TARGET, OTHERS[0]], EPOCHS, NullObserver()
    )
    bad, target, other = results
    assert bad.status == "nonfinite"
    assert not np.isfinite(bad.epochs[-1].loss)
    assert len(bad.epochs) < EPOCHS + 1
    assert not np.isfinite(bad.step_losses[-1][1])
    assert target.status == other.status == "completed"
    assert max_rel(single_target, target) < 1e-4
    assert target.step_losses[0][0] == 0


def test_cancel_between_epochs(lstm: TinyLSTM) -> None:
    obs = Recorder(stop_after=2)  # epochs 0, 1 and 2 recorded, then stop
    results = PackTrainer().train(lstm, [TARGET, OTHERS[0]], EPOCHS, obs)
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert [len(r.epochs) for r in results] == [3, 3]


def test_mixed_batch_sizes_are_rejected(lstm: TinyLSTM) -> None:
    other = ReplicaSpec("b4", {"batch_size": 4}, 1, 1)
    with pytest.raises(ValueError, match="batch size"):
        PackTrainer().train(lstm, [TARGET, other], 1, NullObserver())


def test_dropout_dense_pack_trains_and_high_lr_matches_in_distribution() -> None:
    """At a high lr curves are chaotic: compare the class mix over seeds, not curves."""
    w = TinyDense(dropout=0.0)
    seeds = [
        ReplicaSpec(s, {"optimizer": "sgd", "learning_rate": 3.0, "momentum": 0.9}, 100 + s, 200 + s)
        for s in range(8)
    ]
    single = SingleTrainer().train(w, seeds, EPOCHS, NullObserver())
    packed = PackTrainer().train(w, seeds, EPOCHS, NullObserver())

    def failed(r: ReplicaResult) -> bool:
        return r.status == "nonfinite" or r.epochs[-1].loss >= r.epochs[0].loss

    n_single = sum(failed(r) for r in single)
    n_packed = sum(failed(r) for r in packed)
    assert abs(n_single - n_packed) <= 2
    # Dropout is reproduced in distribution only: the pack trains and learns.
    wd = TinyDense(dropout=0.4)
    res = PackTrainer().train(wd, [ReplicaSpec(0, {"learning_rate": 0.01}, 1, 2)], 6, NullObserver())
    assert res[0].status == "completed"
    assert res[0].epochs[-1].loss < res[0].epochs[0].loss


def test_unpackable_workload_falls_back_to_single(caplog: pytest.LogCaptureFixture) -> None:
    ok, reason = can_pack(Conv())
    assert not ok and "Conv1D" in reason
    with caplog.at_level(logging.WARNING):
        results = PackTrainer().train(Conv(), [ReplicaSpec(0, {}, 1, 2)], 1, NullObserver())
    assert results[0].status == "completed"
    assert "one at a time" in caplog.text


def test_xla_on_cpu_for_small_batches_only(lstm: TinyLSTM, caplog: pytest.LogCaptureFixture) -> None:
    """Default on CPU: XLA for the epoch at batch <= XLA_CPU_MAX_BATCH in smaller packs, never for eval."""
    auto = PackTrainer(max_replicas=64)
    assert auto.uses_xla(XLA_CPU_MAX_BATCH) == (True, False)
    assert auto.pack_cap(XLA_CPU_MAX_BATCH) == XLA_CPU_PACK_CAP
    assert auto.uses_xla(8) == (False, False) and auto.pack_cap(8) == 64
    assert PackTrainer(max_replicas=4).pack_cap(1) == 4  # the user's cap still bounds it
    forced = PackTrainer(jit_compile=False)
    assert forced.uses_xla(2) == (False, False) and forced.pack_cap(2) == 64
    assert PackTrainer(jit_compile=True).uses_xla(32) == (True, True)
    # The choice is part of the compiled-function key: forcing XLA off compiles its own function.
    specs = [
        ReplicaSpec(r.key, {**r.params, "batch_size": XLA_CPU_MAX_BATCH}, r.init_seed, r.data_seed)
        for r in (OTHERS[0], TARGET)
    ]
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        a = PackTrainer().train(lstm, specs, 1, NullObserver())
        b = PackTrainer(jit_compile=False).train(lstm, specs, 1, NullObserver())
    assert "xla=1" in caplog.text and "xla=0" in caplog.text
    assert max_rel(a[1], b[1]) < 1e-4


def test_pack_size_is_chosen_under_the_cap_and_logged(
    lstm: TinyLSTM, caplog: pytest.LogCaptureFixture
) -> None:
    obs = Recorder()
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        results = PackTrainer(max_replicas=2).train(lstm, [TARGET, *OTHERS], 1, obs)
    assert [r.status for r in results] == ["completed"] * 3
    assert "packs of up to 2 replicas" in caplog.text
    # Two packs (2 + 1 replicas), each with an epoch-0 and an epoch-1 bulk call.
    assert [len(c) for c in obs.calls] == [2, 2, 1, 1]
