"""The sharpness arithmetic: power iteration, preconditioners, thresholds against Keras optimizers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from service.core.spec import RecordSharpness
from workers.training.optimizers import build_optimizer, resolve_optimizer_params
from workers.training.sharpness import (
    adam_inv_sqrt_preconditioner,
    measured_at,
    power_iteration,
    rmsprop_inv_sqrt_preconditioner,
    stability_threshold,
    start_vectors,
    subset_indices,
    symmetric_preconditioned,
    top_eigenvalue,
)


def _sym(rng: np.random.Generator, eigenvalues: list[float]) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (q @ np.diag(eigenvalues) @ q.T).astype(np.float32)


def _matvec(a: np.ndarray):  # type: ignore[no-untyped-def]
    m = tf.constant(a)
    return lambda v: [tf.linalg.matvec(m, v[0])]


def test_power_iteration_finds_the_top_eigenvalue() -> None:
    a = _sym(np.random.default_rng(0), [5.0, 2.0, 1.0, -0.5])
    lam, v = power_iteration(_matvec(a), start_vectors([(4,)], 1), 60)
    assert float(lam) == pytest.approx(5.0, rel=1e-4)
    assert float(tf.norm(v[0])) == pytest.approx(1.0, rel=1e-5)


def test_a_dominant_negative_eigenvalue_is_shifted_away() -> None:
    a = _sym(np.random.default_rng(1), [3.0, 1.0, -8.0])
    lam_abs, _ = power_iteration(_matvec(a), start_vectors([(3,)], 1), 80)
    assert float(lam_abs) == pytest.approx(-8.0, rel=1e-3)
    lam, _ = top_eigenvalue(_matvec(a), start_vectors([(3,)], 1), 80)
    assert float(lam) == pytest.approx(3.0, rel=1e-3)


def test_batched_iteration_normalises_each_replica_apart() -> None:
    """Block-diagonal operator: each replica's block has its own scale, one shift only where needed."""
    rng = np.random.default_rng(2)
    blocks = [_sym(rng, [1e3, 1.0, 0.5]), _sym(rng, [0.01, 0.002, 0.001]), _sym(rng, [2.0, -9.0, 0.1])]
    stack = tf.constant(np.stack(blocks))

    def matvec(v: list[tf.Tensor]) -> list[tf.Tensor]:
        return [tf.linalg.matvec(stack, v[0])]

    start = [tf.constant(rng.standard_normal((3, 3)).astype(np.float32))]
    lam, _ = top_eigenvalue(matvec, start, 80, batched=True)
    np.testing.assert_allclose(lam.numpy(), [1e3, 0.01, 2.0], rtol=1e-3)


def test_tolerance_stops_once_every_quotient_settled() -> None:
    """Warm-started from a converged vector: two products; a slow-converging replica keeps it going."""
    rng = np.random.default_rng(3)
    a = _sym(rng, [5.0, 4.9, 1.0, 0.5])
    calls: list[int] = []

    def counted(m):  # type: ignore[no-untyped-def]
        inner = _matvec(m) if m.ndim == 2 else (lambda v: [tf.linalg.matvec(tf.constant(m), v[0])])

        def apply(v: list[tf.Tensor]) -> list[tf.Tensor]:
            calls.append(1)
            return inner(v)

        return apply

    exact, v = power_iteration(_matvec(a), start_vectors([(4,)], 1), 2000)
    calls.clear()
    lam, _ = power_iteration(counted(a), v, 200, tolerance=1e-3)
    assert len(calls) == 2 and float(lam) == pytest.approx(float(exact), rel=1e-5)
    calls.clear()
    cold, _ = power_iteration(counted(a), start_vectors([(4,)], 1), 200, tolerance=1e-4)
    assert 2 < len(calls) < 200 and float(cold) == pytest.approx(5.0, rel=2e-2)
    # Batched: it stops only when the slowest replica settled, and never before `iterations`' cap.
    fast = _sym(rng, [5.0, 0.1, 0.05, 0.01])
    stack = np.stack([fast, a])
    start = [tf.constant(rng.standard_normal((2, 4)).astype(np.float32))]
    calls.clear()
    power_iteration(counted(fast[None]), [start[0][:1]], 200, batched=True, tolerance=1e-4)
    alone = len(calls)
    calls.clear()
    power_iteration(counted(stack), start, 200, batched=True, tolerance=1e-4)
    assert len(calls) > alone
    calls.clear()
    power_iteration(counted(stack), start, 3, batched=True, tolerance=1e-4)
    assert len(calls) == 3


def test_preconditioned_operator_has_the_eigenvalues_of_p_inverse_a() -> None:
    rng = np.random.default_rng(3)
    a = _sym(rng, [4.0, 3.0, 1.0, 0.5])
    p = np.array([0.1, 2.0, 1.0, 0.5], np.float32)
    expected = np.max(np.linalg.eigvals(np.diag(1 / p) @ a).real)
    op = symmetric_preconditioned(_matvec(a), [tf.constant(1 / np.sqrt(p))])
    lam, _ = top_eigenvalue(op, start_vectors([(4,)], 0), 200)
    assert float(lam) == pytest.approx(expected, rel=1e-3)


def test_preconditioners_follow_keras_placement_of_epsilon() -> None:
    v = [tf.constant([0.0, 4e-4, 1.0])]
    t, b1, b2, eps = 3.0, 0.9, 0.999, 1e-7
    p_adam = (1 - b1**t) * (np.sqrt([0.0, 4e-4, 1.0]) + eps) / np.sqrt(1 - b2**t)
    got = adam_inv_sqrt_preconditioner(v, t, b1, b2, eps)[0].numpy()
    np.testing.assert_allclose(got, 1 / np.sqrt(p_adam), rtol=1e-5)
    p_rms = np.sqrt(np.array([0.0, 4e-4, 1.0]) + eps)
    np.testing.assert_allclose(
        rmsprop_inv_sqrt_preconditioner(v, eps)[0].numpy(), 1 / np.sqrt(p_rms), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("params", "expected_times_lr"),
    [
        ({"optimizer": "sgd"}, 2.0),
        ({"optimizer": "sgd", "momentum": 0.9}, 3.8),
        ({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}, 3.8 / 2.8),
        ({"optimizer": "adam"}, 38.0),
        ({"optimizer": "adamw", "beta_1": 0.5}, 6.0),
        ({"optimizer": "rmsprop"}, 2.0),
        ({"optimizer": "rmsprop", "momentum": 0.5}, 3.0),
    ],
)
def test_thresholds(params: dict[str, object], expected_times_lr: float) -> None:
    lr = 0.01
    got = stability_threshold(resolve_optimizer_params({**params, "learning_rate": lr}), lr)
    assert got == pytest.approx(expected_times_lr / lr)
    assert stability_threshold(resolve_optimizer_params(params), 0.0) is None


def _keras_grows(params: dict[str, object], curvature: float, steps: int = 300) -> bool:
    """Whether Keras' optimizer, on f(w) = curvature w^2 / 2 from w = 1, blows up."""
    opt = build_optimizer(params, steps_per_epoch=1)
    w = keras.Variable(np.ones(1, np.float32))
    opt.build([w])
    for _ in range(steps):
        opt.apply_gradients([(curvature * w.value, w)])
    final = abs(float(w.numpy()[0]))
    return not final < 1.0  # overflow ends in nan: that grew too


@pytest.mark.parametrize(
    "params",
    [
        {"optimizer": "sgd", "learning_rate": 0.1},
        {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    ],
)
def test_sgd_thresholds_are_where_keras_sgd_turns_unstable(params: dict[str, object]) -> None:
    """The threshold is the quadratic's curvature at which Keras' own update stops converging."""
    edge = stability_threshold(resolve_optimizer_params(params), 0.1)
    assert edge is not None
    assert not _keras_grows(params, 0.97 * edge)
    assert _keras_grows(params, 1.03 * edge)


def test_subset_is_fixed_by_the_data_seed() -> None:
    a = subset_indices(100, 10, 7)
    assert a is not None and len(set(a.tolist())) == 10
    np.testing.assert_array_equal(a, subset_indices(100, 10, 7))  # type: ignore[arg-type]
    assert not np.array_equal(a, subset_indices(100, 10, 8))  # type: ignore[arg-type]
    assert subset_indices(100, None, 7) is None and subset_indices(100, 100, 7) is None


def test_measured_epochs() -> None:
    opts = RecordSharpness(every=5)
    assert [e for e in range(12) if measured_at(e, opts)] == [0, 5, 10]
