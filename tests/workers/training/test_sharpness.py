"""The sharpness arithmetic: Lanczos, preconditioners, thresholds against Keras optimizers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from service.core.spec import RecordSharpness
from workers.training import sharpness
from workers.training.lanczos import top_eigenvalue
from workers.training.optimizers import build_optimizer, resolve_optimizer_params
from workers.training.sharpness import (
    adam_inv_sqrt_preconditioner,
    difference_product,
    measured_at,
    rmsprop_inv_sqrt_preconditioner,
    stability_threshold,
    start_vectors,
    subset_indices,
    symmetric_preconditioned,
)


def _sym(rng: np.random.Generator, eigenvalues: list[float]) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (q @ np.diag(eigenvalues) @ q.T).astype(np.float32)


def _matvec(a: np.ndarray):  # type: ignore[no-untyped-def]
    m = tf.constant(a)
    return lambda v: [tf.linalg.matvec(m, v[0])]


def _counted(m: np.ndarray, calls: list[int]):  # type: ignore[no-untyped-def]
    """The (batched, for a 3-d ``m``) product, counting its calls."""
    t = tf.constant(m)

    def apply(v: list[tf.Tensor]) -> list[tf.Tensor]:
        calls.append(1)
        return [tf.linalg.matvec(t, v[0])]

    return apply


def test_lanczos_finds_the_top_eigenvalue_and_its_vector() -> None:
    a = _sym(np.random.default_rng(0), [5.0, 2.0, 1.0, -0.5])
    lam, v = top_eigenvalue(_matvec(a), start_vectors([(4,)], 1), 4)
    assert float(lam) == pytest.approx(5.0, rel=1e-5)
    assert float(tf.norm(v[0])) == pytest.approx(1.0, rel=1e-5)
    av = a @ v[0].numpy()
    np.testing.assert_allclose(av, 5.0 * v[0].numpy(), atol=1e-4)


def test_the_largest_algebraic_eigenvalue_even_when_a_negative_one_dominates() -> None:
    """Power iteration would converge to -8 (largest magnitude); the Ritz value is the top, 3."""
    a = _sym(np.random.default_rng(1), [3.0, 1.0, -8.0])
    lam, _ = top_eigenvalue(_matvec(a), start_vectors([(3,)], 1), 10)
    assert float(lam) == pytest.approx(3.0, rel=1e-4)
    negative = _sym(np.random.default_rng(1), [-1.0, -2.0, -30.0])
    lam, _ = top_eigenvalue(_matvec(negative), start_vectors([(3,)], 1), 10)
    assert float(lam) == pytest.approx(-1.0, rel=1e-4)


def test_batched_lanczos_gives_each_replica_its_own_estimate() -> None:
    """Block-diagonal operator: each replica's block has its own scale and sign; a rank-one block
    (eigenvalues -4, 0, 0) completes its basis after two steps, and the steps it sits out must not
    become its top."""
    rng = np.random.default_rng(2)
    u = rng.standard_normal(3)
    rank_one = (-4.0 * np.outer(u, u) / (u @ u)).astype(np.float32)  # eigenvalues -4, 0, 0
    blocks = [_sym(rng, [1e3, 1.0, 0.5]), _sym(rng, [0.01, 0.002, 0.001]), _sym(rng, [2.0, -9.0, 0.1])]
    blocks.append(_sym(rng, [-1.0, -2.0, -3.0]))
    stack = np.stack([*blocks, rank_one])
    start = [tf.constant(rng.standard_normal((5, 3)).astype(np.float32))]
    calls: list[int] = []
    lam, v = top_eigenvalue(_counted(stack, calls), start, 80, batched=True)
    # Every block is done after 3 products (a 3 x 3 block has a complete basis by then).
    np.testing.assert_allclose(lam.numpy()[:4], [1e3, 0.01, 2.0, -1.0], rtol=1e-4)
    assert abs(float(lam[4])) < 1e-5
    assert len(calls) <= 3
    np.testing.assert_allclose(np.linalg.norm(v[0].numpy(), axis=1), 1.0, rtol=1e-5)


def test_tolerance_stops_on_the_residual_bound() -> None:
    """Warm-started from its own Ritz vector: one product; a slow replica keeps a pack going."""
    rng = np.random.default_rng(3)
    spectrum = [5.05, *np.linspace(1.0, 5.0, 60)]
    a = _sym(rng, spectrum)
    calls: list[int] = []
    cold, v = top_eigenvalue(_counted(a, calls), start_vectors([(61,)], 1), 200, tolerance=1e-4)
    assert 2 < len(calls) < 61 and float(cold) == pytest.approx(5.05, rel=2e-4)
    calls.clear()
    warm, _ = top_eigenvalue(_counted(a, calls), v, 200, tolerance=1e-4)
    assert len(calls) == 1 and float(warm) == pytest.approx(5.05, rel=2e-4)
    # Batched: it stops only when the slowest replica's bound is met, and never after the cap.
    fast = _sym(rng, [50.0, *np.linspace(0.0, 1.0, 60)])
    start = [tf.constant(rng.standard_normal((2, 61)).astype(np.float32))]
    calls.clear()
    top_eigenvalue(_counted(fast[None], calls), [start[0][:1]], 200, batched=True, tolerance=1e-4)
    alone = len(calls)
    calls.clear()
    top_eigenvalue(_counted(np.stack([fast, a]), calls), start, 200, batched=True, tolerance=1e-4)
    assert len(calls) > alone
    calls.clear()
    top_eigenvalue(_counted(np.stack([fast, a]), calls), start, 3, batched=True, tolerance=1e-4)
    assert len(calls) == 3


def test_compact_iteration_drops_each_replica_once_its_bound_is_met() -> None:
    """A fast and a slow replica: with ``compact`` the fast one stops at its own bound and later
    products are computed for the slow one only; both estimates are those of a full iteration."""
    rng = np.random.default_rng(5)
    fast = _sym(rng, [50.0, *np.linspace(0.0, 1.0, 60)])
    slow = _sym(rng, [5.05, *np.linspace(1.0, 5.0, 60)])
    stack = tf.constant(np.stack([fast, slow]))
    sizes: list[int] = []

    def by_rows(v: list[tf.Tensor], rows: np.ndarray | None = None) -> list[tf.Tensor]:
        m = stack if rows is None else tf.gather(stack, rows)
        sizes.append(int(m.shape[0]))
        return [tf.linalg.matvec(m, v[0])]

    start = [tf.constant(rng.standard_normal((2, 61)).astype(np.float32))]
    full, _ = top_eigenvalue(by_rows, start, 60, batched=True, tolerance=1e-5)
    n_full = len(sizes)
    sizes.clear()
    lam, v = top_eigenvalue(by_rows, start, 60, batched=True, tolerance=1e-5, compact=True)
    assert len(sizes) == n_full and sizes[0] == 2 and sizes[-1] == 1 and 1 in sizes
    np.testing.assert_allclose(lam.numpy(), [50.0, 5.05], rtol=1e-4)
    np.testing.assert_allclose(lam.numpy(), full.numpy(), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(v[0].numpy(), axis=1), 1.0, rtol=1e-5)


def test_a_long_run_restarts_from_its_ritz_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    """More products than the basis holds: restarted cycles converge too, with a bounded basis."""
    from workers.training import lanczos

    monkeypatch.setattr(lanczos, "RESTART", 6)
    a = _sym(np.random.default_rng(4), [5.05, *np.linspace(1.0, 5.0, 60)])
    calls: list[int] = []
    lam, _ = top_eigenvalue(_counted(a, calls), start_vectors([(61,)], 1), 60)
    assert len(calls) == 60 and float(lam) == pytest.approx(5.05, rel=1e-3)


def test_preconditioned_operator_has_the_eigenvalues_of_p_inverse_a() -> None:
    rng = np.random.default_rng(3)
    a = _sym(rng, [4.0, 3.0, 1.0, 0.5])
    p = np.array([0.1, 2.0, 1.0, 0.5], np.float32)
    expected = np.max(np.linalg.eigvals(np.diag(1 / p) @ a).real)
    op = symmetric_preconditioned(_matvec(a), [tf.constant(1 / np.sqrt(p))])
    lam, _ = top_eigenvalue(op, start_vectors([(4,)], 0), 200)
    assert float(lam) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("batched", [False, True])
def test_difference_products_are_central(monkeypatch: pytest.MonkeyPatch, batched: bool) -> None:
    """On f(w) = sum(w^4) / 4 (gradient w^3, H v = 3 w^2 v) the central difference's error is
    e^2 v^3: second order in the step, where a forward difference's 3 e w v^2 is first order.
    At a step of 1e-2 the product is then right to ~1e-4, where a forward one is ~2% off."""
    monkeypatch.setattr(sharpness, "DIFFERENCE_STEP", 1e-2)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.5, (3, 6)) if batched else rng.uniform(0.5, 1.5, 6)
    v = rng.standard_normal(w.shape)

    def cube(at: list[tf.Tensor], rows: object = None) -> list[tf.Tensor]:
        return [a**3 for a in at]

    product = difference_product(cube, [tf.constant(w)], batched=batched)
    (got,) = product([tf.constant(v)])
    exact = 3 * w**2 * v
    err = np.linalg.norm(got.numpy() - exact) / np.linalg.norm(exact)
    assert err < 1e-3
    rows = np.array([2, 0])
    if batched:  # the replicas at rows only, each at its own weights
        (part,) = product([tf.constant(v[rows])], rows)
        np.testing.assert_allclose(part.numpy(), got.numpy()[rows], rtol=1e-12)


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
