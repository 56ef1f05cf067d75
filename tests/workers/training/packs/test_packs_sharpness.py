"""Every replica's sharpness from one vectorised Lanczos iteration equals its lone estimate."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest

from service.core.spec import RecordSharpness
from tests.workers.training.pack_workloads import BAD, OTHERS, TARGET, TinyDense, TinyLSTM
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer
from workers.training.single import SingleTrainer
from workers.training.training_plan import TrainingPlan

RMSPROP = ReplicaSpec("rmsprop", {"optimizer": "rmsprop", "learning_rate": 3e-3}, 51, 52)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=2e-3, abs_tol=1e-4)


class TinyBatchNorm(TinyDense):
    """Dense -> BatchNormalization -> Dense: the moving statistics are weights the Hessian excludes."""

    name = "tiny_batchnorm"

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((3, 2)),
                L.Flatten(),
                L.Dense(8, activation="tanh"),
                L.BatchNormalization(momentum=0.5),
                L.Dense(2, activation="softmax"),
            ]
        )


@pytest.mark.parametrize(
    ("workload", "examples"),
    [
        (TinyDense(), None),
        (TinyDense(), 12),
        (TinyBatchNorm(), None),
        pytest.param(TinyLSTM(), None, marks=pytest.mark.slow),  # ~20 s: unfused LSTM double backward
    ],
)
def test_pack_estimates_equal_lone_estimates(workload: Any, examples: int | None) -> None:
    """Adam (clipped; cosine), Nesterov SGD, RMSprop and a replica that overflows, in one pack.

    Both start from the same vectors (the data seed's), so they agree whether or not converged.
    """
    plan = TrainingPlan(sharpness=RecordSharpness(every=2, iterations=20, examples=examples))
    replicas = [TARGET, *OTHERS, RMSPROP, BAD]
    lone = SingleTrainer(plan=plan).train(workload, replicas, 2, NullObserver())
    packed = PackTrainer(plan=plan).train(workload, replicas, 2, NullObserver())
    for a, b in zip(lone, packed, strict=True):
        assert a.status == b.status
        assert [e.epoch for e in a.epochs] == [e.epoch for e in b.epochs]
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            for field in ("sharpness", "preconditioned_sharpness", "stability_threshold"):
                assert _close(getattr(ea, field), getattr(eb, field)), (a.key, ea.epoch, field)
    by_key = {r.key: r for r in packed}
    assert by_key["target"].epochs[2].preconditioned_sharpness is not None
    assert by_key["sgd"].epochs[2].preconditioned_sharpness is None
    assert by_key["rmsprop"].epochs[2].preconditioned_sharpness is not None
    assert by_key["sgd"].epochs[0].sharpness is not None and by_key["sgd"].epochs[1].sharpness is None
    assert by_key["bad"].epochs[-1].sharpness is None  # non-finite: nothing to measure


def test_estimates_follow_the_survivors_when_a_pack_compacts() -> None:
    """Half the pack overflows at once, so it shrinks after epoch 1; the survivors' sharpness (warm
    started per replica) must be what the uncompacted pack measures for them."""
    bad2 = ReplicaSpec("bad2", {"optimizer": "sgd", "learning_rate": 1e38}, 61, 62)
    plan = TrainingPlan(sharpness=RecordSharpness(every=1, iterations=20))
    specs = [BAD, TARGET, bad2, OTHERS[0]]
    compacted = PackTrainer(plan=plan).train(TinyDense(), specs, 3, NullObserver())
    kept = PackTrainer(plan=plan, compaction=False).train(TinyDense(), specs, 3, NullObserver())
    survivor = compacted[1].training
    assert survivor is not None and [r.size for r in survivor.resized] == [2]
    for a, b in zip(compacted, kept, strict=True):
        assert [e.epoch for e in a.epochs] == [e.epoch for e in b.epochs]
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            for field in ("sharpness", "preconditioned_sharpness", "stability_threshold"):
                assert _close(getattr(ea, field), getattr(eb, field)), (a.key, ea.epoch, field)
    assert compacted[1].epochs[3].sharpness is not None


def test_a_tolerance_stops_early_near_the_full_estimate() -> None:
    """With ``tolerance`` each replica's estimate lies within a few tolerances of the M = 200 one,
    in a pack (which stops when its slowest replica settled) as alone."""
    replicas = [TARGET, *OTHERS, RMSPROP]
    full = TrainingPlan(sharpness=RecordSharpness(every=2, iterations=200))
    early = TrainingPlan(sharpness=RecordSharpness(every=2, iterations=200, tolerance=1e-5))
    reference = PackTrainer(plan=full).train(TinyDense(), replicas, 2, NullObserver())
    for trainer in (PackTrainer(plan=early), SingleTrainer(plan=early)):
        got = trainer.train(TinyDense(), replicas, 2, NullObserver())
        for a, b in zip(reference, got, strict=True):
            for ea, eb in zip(a.epochs, b.epochs, strict=True):
                for field in ("sharpness", "preconditioned_sharpness"):
                    x, y = getattr(ea, field), getattr(eb, field)
                    assert (x is None) == (y is None), (a.key, ea.epoch, field)
                    assert x is None or math.isclose(x, y, rel_tol=1e-2, abs_tol=1e-4), (
                        a.key,
                        ea.epoch,
                        field,
                    )


def test_a_pack_without_second_derivatives_trains_on_unmeasured(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As alone (cuDNN's RNN kernels on a GPU): every replica completes, none is measured, one log line."""
    from workers.training.packs.sharpness import PackSharpness

    def no_gradient(self: PackSharpness, pack: Any) -> None:
        raise LookupError("No gradient defined for operation 'CudnnRNNBackprop'")

    monkeypatch.setattr(PackSharpness, "_estimate", no_gradient)
    plan = TrainingPlan(sharpness=RecordSharpness(every=1, iterations=5))
    with caplog.at_level("WARNING"):
        results = PackTrainer(plan=plan).train(TinyDense(), [TARGET, *OTHERS], 2, NullObserver())
    assert [r.status for r in results] == ["completed"] * (1 + len(OTHERS))
    assert all(len(r.epochs) == 3 for r in results)
    assert all(e.sharpness is None and e.stability_threshold is None for r in results for e in r.epochs)
    assert sum("sharpness not measured for this pack" in m for m in caplog.messages) == 1


@pytest.mark.parametrize("workload", [TinyBatchNorm(), TinyLSTM()])
def test_difference_products_agree_with_exact_ones(workload: Any) -> None:
    """(g(w + e v) - g(w - e v)) / 2e through the training kernels, against double backward: the same
    estimates to a fraction of a percent on smooth models that train normally. (Not TinyDense:
    across a ReLU kink the gradient jumps, and a jump divided by e is no curvature; see
    docs/sharpness.md.)"""
    replicas = [TARGET, *OTHERS, RMSPROP]
    results = {}
    for products in ("exact", "difference"):
        options = RecordSharpness.model_validate({"every": 2, "iterations": 20, "products": products})
        results[products] = PackTrainer(plan=TrainingPlan(sharpness=options)).train(
            workload, replicas, 2, NullObserver()
        )
    for a, b in zip(results["exact"], results["difference"], strict=True):
        assert [e.loss for e in a.epochs] == [e.loss for e in b.epochs]  # training untouched
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            for field in ("sharpness", "preconditioned_sharpness"):
                x, y = getattr(ea, field), getattr(eb, field)
                assert (x is None) == (y is None), (a.key, ea.epoch, field)
                if x is not None:
                    assert y == pytest.approx(x, rel=1e-2, abs=1e-3), (a.key, ea.epoch, field)


def test_distinct_rows_groups_equal_replicas() -> None:
    from workers.training.packs.sharpness import distinct_rows

    a = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [1.0, 2.0]], np.float32)
    b = np.array([[0], [0], [0], [1]], np.int32)
    reps, owner = distinct_rows([a, b])
    assert reps.tolist() == [0, 1, 3] and owner.tolist() == [0, 1, 0, 2]


def test_replicas_with_one_operator_are_estimated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """At epoch 0 replicas of one init seed (and one subset) share their weights, so their Hessian:
    one iteration serves them all, and each gets its estimate; after a step they differ."""
    from workers.training.packs import sharpness as pack_sharpness

    widths: list[int] = []
    real = pack_sharpness.top_eigenvalue

    def counted(op: Any, start: Any, *args: Any, **kwargs: Any) -> Any:
        widths.append(int(start[0].shape[0]))
        return real(op, start, *args, **kwargs)

    monkeypatch.setattr(pack_sharpness, "top_eigenvalue", counted)
    replicas = [ReplicaSpec(lr, {"optimizer": "sgd", "learning_rate": lr}, 7, 8) for lr in (1e-3, 1e-2, 1e-1)]
    plan = TrainingPlan(sharpness=RecordSharpness(every=1, iterations=20))
    results = PackTrainer(plan=plan).train(TinyDense(), replicas, 1, NullObserver())
    assert widths == [1, 3]
    at_init = {r.epochs[0].sharpness for r in results}
    assert len(at_init) == 1 and None not in at_init
    lone = SingleTrainer(plan=plan).train(TinyDense(), replicas[:1], 1, NullObserver())[0]
    assert _close(lone.epochs[0].sharpness, results[0].epochs[0].sharpness)
