"""The single trainer's sharpness against closed forms, and the edge-of-stability picture on a small MLP."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from service.core.spec import RecordSharpness
from workers.training.interface import NullObserver, ReplicaResult, ReplicaSpec
from workers.training.single import SingleTrainer
from workers.training.training_plan import TrainingPlan
from workers.workloads.base import Dataset
from workers.workloads.presets import LeastSquares


def _train(
    workload: Any, params: dict[str, Any], epochs: int, options: RecordSharpness
) -> tuple[SingleTrainer, ReplicaResult]:
    trainer = SingleTrainer(plan=TrainingPlan(sharpness=options))
    spec = ReplicaSpec(key=0, params=params, init_seed=1, data_seed=2)
    (result,) = trainer.train(workload, [spec], epochs, NullObserver())
    return trainer, result


@pytest.mark.parametrize("products", ["exact", "difference"])
def test_least_squares_sharpness_is_the_known_top_eigenvalue(products: str) -> None:
    """H = (2/n) X^T X exactly (Keras' mse, one output); full-batch GD below and above the edge.

    A quadratic's gradient is linear, so difference products are exact up to float32 rounding too.
    """
    workload = LeastSquares({"lambda_max": 3.0, "condition": 10.0})
    lam_max = float(workload.hessian_eigenvalues[0])
    x = workload.dataset().x_train.astype(np.float64)
    assert np.linalg.eigvalsh(2.0 / len(x) * x.T @ x).max() == pytest.approx(lam_max, rel=1e-5)
    for lr_factor in (0.5, 1.05):
        lr = lr_factor * workload.edge_lr
        options = RecordSharpness.model_validate({"every": 2, "products": products})
        _, result = _train(workload, {"optimizer": "sgd", "learning_rate": lr}, 6, options)
        measured = [(e.epoch, e.sharpness) for e in result.epochs if e.sharpness is not None]
        assert [ep for ep, _ in measured] == [0, 2, 4, 6]
        for _, s in measured:
            assert s == pytest.approx(lam_max, rel=0.01)
        assert all(e.preconditioned_sharpness is None for e in result.epochs)  # SGD has no preconditioner
        assert result.epochs[0].stability_threshold == pytest.approx(2.0 / lr)
        assert result.epochs[1].stability_threshold is None  # not a measured epoch


class DiagonalQuadratic:
    """f(w) = (1/n)||Xw - y||^2 with orthogonal columns: H = diag(curvatures), no rotation."""

    name = "diagonal_quadratic"
    loss = "mse"
    num_classes = 0
    default_params: dict[str, Any] = {"batch_size": 10**6}
    curvatures = np.array([4.0, 1.0, 0.25, 0.05])

    def dataset(self) -> Dataset:
        n = 32
        rng = np.random.default_rng(0)
        u, _ = np.linalg.qr(rng.standard_normal((n, len(self.curvatures))))
        x = u * np.sqrt(n * self.curvatures / 2.0)
        y = x @ rng.standard_normal(len(self.curvatures))
        return Dataset(x.astype(np.float32), y[:, None].astype(np.float32))

    def build_model(self) -> Any:
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False)])


def test_difference_products_leave_training_as_it_was() -> None:
    """The estimate moves the model's weights to w + e v, w - e v and back: the run must not notice."""
    workload = LeastSquares({"lambda_max": 3.0, "condition": 10.0})
    params = {"optimizer": "adam", "learning_rate": 0.05}
    plain = SingleTrainer().train(workload, [ReplicaSpec(0, params, 1, 2)], 4, NullObserver())[0]
    options = RecordSharpness.model_validate({"every": 1, "iterations": 5, "products": "difference"})
    _, measured = _train(workload, params, 4, options)
    assert [e.loss for e in measured.epochs] == [e.loss for e in plain.epochs]
    assert all(e.sharpness is not None for e in measured.epochs)


@pytest.mark.parametrize(("products", "rel"), [("exact", 1e-3), ("difference", 5e-3)])
def test_adam_preconditioned_sharpness_on_a_diagonal_quadratic(products: str, rel: float) -> None:
    """max_i h_i / P_i with P = (1 - b1^t)(sqrt(v) + eps)/sqrt(1 - b2^t) from the optimizer's own v."""
    workload = DiagonalQuadratic()
    params = {"optimizer": "adam", "learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99}
    options = RecordSharpness.model_validate({"every": 7, "iterations": 200, "products": products})
    trainer, result = _train(workload, params, 7, options)
    last = result.epochs[-1]
    assert last.epoch == 7 and last.preconditioned_sharpness is not None
    optimizer = next(iter(trainer._compiled.values())).optimizer
    t = int(optimizer.iterations.numpy())
    assert t == 7
    v = np.asarray(optimizer._velocities[0].numpy(), np.float64).ravel()
    p = (1 - 0.8**t) * (np.sqrt(v) + 1e-7) / np.sqrt(1 - 0.99**t)
    assert last.preconditioned_sharpness == pytest.approx(np.max(workload.curvatures / p), rel=rel)
    assert last.sharpness == pytest.approx(4.0, rel=rel)
    assert last.stability_threshold == pytest.approx((2 + 2 * 0.8) / ((1 - 0.8) * 0.05))
    assert result.epochs[0].preconditioned_sharpness is None  # no second moment before the first step


def test_rmsprop_preconditioned_sharpness_on_a_diagonal_quadratic() -> None:
    workload = DiagonalQuadratic()
    params = {"optimizer": "rmsprop", "learning_rate": 0.01, "rho": 0.9}
    trainer, result = _train(workload, params, 3, RecordSharpness(every=3, iterations=200))
    optimizer = next(iter(trainer._compiled.values())).optimizer
    v = np.asarray(optimizer._velocities[0].numpy(), np.float64).ravel()
    p = np.sqrt(v + 1e-7)
    assert result.epochs[-1].preconditioned_sharpness == pytest.approx(
        np.max(workload.curvatures / p), rel=1e-3
    )


def test_subset_hessian_is_the_subsets() -> None:
    """``examples``: the Hessian of the mean loss over the data seed's fixed subset."""
    from workers.training.sharpness import subset_indices

    workload = LeastSquares({"n": 64, "d": 4})
    x = workload.dataset().x_train.astype(np.float64)
    idx = subset_indices(64, 16, 2)  # the replica's data seed is 2
    assert idx is not None
    expected = np.linalg.eigvalsh(2.0 / 16 * x[idx].T @ x[idx]).max()
    _, result = _train(workload, {"optimizer": "sgd", "learning_rate": 0.1}, 1, RecordSharpness(examples=16))
    assert result.epochs[0].sharpness == pytest.approx(expected, rel=0.01)


class TinyMLP:
    """Full-batch regression with a 2-hidden-layer tanh MLP: sharpens progressively under GD."""

    name = "tiny_mlp"
    loss = "mse"
    num_classes = 0
    default_params: dict[str, Any] = {"optimizer": "sgd", "batch_size": 10**6}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 4)).astype(np.float32)
        y = np.sin(2 * x[:, :1]) * np.cos(x[:, 1:2]) + 0.5 * x[:, 2:3] ** 2
        return Dataset(x, y.astype(np.float32))

    def build_model(self) -> Any:
        return keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(32, activation="tanh"),
                keras.layers.Dense(32, activation="tanh"),
                keras.layers.Dense(1),
            ]
        )


def test_progressive_sharpening_to_the_edge_of_stability() -> None:
    """Sharpness rises from ~11 until it meets 2/lr, then hovers there (Cohen et al. 2021). ~3 s."""
    trainer = SingleTrainer(plan=TrainingPlan(sharpness=RecordSharpness(every=10, iterations=20)))
    specs = [
        ReplicaSpec(key=lr, params={"learning_rate": lr}, init_seed=0, data_seed=0) for lr in (0.05, 0.1)
    ]
    small, large = trainer.train(TinyMLP(), specs, 250, NullObserver())
    for result, lr in ((small, 0.05), (large, 0.1)):
        curve = {e.epoch: e.sharpness for e in result.epochs if e.sharpness is not None}
        assert curve[0] < 0.6 * 2 / lr  # starts well below the edge
        assert max(curve.values()) > 0.9 * 2 / lr  # and sharpens up to it
        assert max(curve.values()) < 1.8 * 2 / lr  # may overshoot before a loss spike brings it back
    tail = [e.sharpness for e in large.epochs if e.sharpness is not None and e.epoch >= 120]
    assert np.median(tail) == pytest.approx(2 / 0.1, rel=0.2)
    assert all(abs(s / 20.0 - 1) < 0.3 for s in tail)


def test_a_model_without_second_derivatives_trains_on_unmeasured(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuDNN's RNN kernels have no second derivative: the run completes, its sharpness is None."""
    from workers.training.single_sharpness import LoneSharpness

    def no_gradient(self: LoneSharpness, learning_rate: float) -> None:
        raise LookupError("No gradient defined for operation 'CudnnRNNBackprop'")

    monkeypatch.setattr(LoneSharpness, "_estimate", no_gradient)
    workload = LeastSquares({"n": 16, "d": 2})
    _, result = _train(workload, {"optimizer": "sgd", "learning_rate": 0.1}, 2, RecordSharpness())
    assert result.status == "completed" and len(result.epochs) == 3
    assert all(e.sharpness is None and e.stability_threshold is None for e in result.epochs)
