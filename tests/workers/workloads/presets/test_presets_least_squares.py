"""workers/workloads/presets/least_squares.py: X built so that the loss Hessian's top eigenvalue, and so
the edge of stability of full-batch gradient descent, are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from service.core.errors import InvalidSpec
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.single import SingleTrainer
from workers.workloads.presets import LeastSquares
from workers.workloads.registry import build_preset


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


def test_least_squares_needs_as_many_rows_as_columns() -> None:
    with pytest.raises(InvalidSpec, match=r"n \(3\) must be >= d \(4\)"):
        LeastSquares({"n": 3, "d": 4})
    w = LeastSquares({"n": 6, "d": 3, "lambda_max": 4.0, "condition": 100.0})
    assert w.edge_lr == pytest.approx(0.5)
    assert w.hessian_eigenvalues == pytest.approx(np.geomspace(4.0, 0.04, 3))
    assert w.default_params["batch_size"] == 6 and w.dataset().x_train.shape == (6, 3)
