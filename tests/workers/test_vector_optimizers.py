"""The vectorised optimizers against Keras' own, update for update.

Each replica of a stack is given its own hyperparameters; the same gradients
are fed to one ``keras.optimizers.X`` per replica and to ``apply_updates``;
after every step the weights must agree to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from workers.training.vector_optimizers import (
    apply_updates,
    clip_by_norm,
    global_norm,
    hyper_from_params,
    init_slots,
)

SHAPES = [(3, 4), (4,), (2, 3, 2)]
STEPS = 6


def _keras_optimizer(p: dict[str, Any]) -> keras.optimizers.Optimizer:
    kw = {k: v for k, v in p.items() if k not in ("optimizer", "clipnorm")}
    if p.get("clipnorm"):
        kw["clipnorm"] = p["clipnorm"]
    cls = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[p["optimizer"]]
    return cls(**kw)


def _run(params: list[dict[str, Any]], lrs: np.ndarray | None = None) -> float:
    """Max relative difference between Keras and the stacked update over STEPS steps."""
    k = len(params)
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=(k, *s)).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=(k, *s)).astype(np.float32) * 3 for s in SHAPES] for _ in range(STEPS)]

    # Keras, one optimizer and one set of variables per replica.
    keras_w = []
    for r, p in enumerate(params):
        opt = _keras_optimizer(p)
        vs = [keras.Variable(w[r]) for w in w0]
        opt.build(vs)
        for s in range(STEPS):
            if lrs is not None:
                opt.learning_rate.assign(lrs[s, r])
            opt.apply_gradients(zip([tf.constant(g[r]) for g in grads[s]], vs, strict=True))
        keras_w.append([np.asarray(v.numpy()) for v in vs])

    hyper = hyper_from_params(params)
    ht = hyper.as_tensors()
    ps = [tf.constant(w) for w in w0]
    m, v = init_slots(ps)
    base_lr = np.array([p.get("learning_rate", 0.001) for p in params], np.float32)
    for s in range(STEPS):
        lr = tf.constant(lrs[s] if lrs is not None else base_lr)
        ps, m, v = apply_updates(
            ps, [tf.constant(g) for g in grads[s]], m, v, tf.constant(float(s)), lr, ht, hyper.kinds
        )
    worst = 0.0
    for r in range(k):
        for j in range(len(SHAPES)):
            ref = keras_w[r][j]
            got = ps[j].numpy()[r]
            rel = np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3))
            worst = max(worst, float(rel))
    return worst


CASES = {
    "adam": [
        {"optimizer": "adam", "learning_rate": 1e-3},
        {"optimizer": "adam", "learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.99, "epsilon": 1e-4},
        {"optimizer": "adam", "learning_rate": 0.01, "clipnorm": 0.5},
    ],
    "adamw": [
        {"optimizer": "adamw", "learning_rate": 0.01, "weight_decay": 0.1},
        {"optimizer": "adamw", "learning_rate": 0.002},
    ],
    "rmsprop": [
        {"optimizer": "rmsprop", "learning_rate": 1e-3, "rho": 0.9},
        {"optimizer": "rmsprop", "learning_rate": 0.01, "rho": 0.5, "momentum": 0.9, "epsilon": 1e-5},
        {"optimizer": "rmsprop", "learning_rate": 0.01, "clipnorm": 1.0},
    ],
    "sgd": [
        {"optimizer": "sgd", "learning_rate": 0.1},
        {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.8, "nesterov": True, "clipnorm": 2.0},
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras_update_for_update(name: str) -> None:
    assert _run(CASES[name]) < 1e-6


def test_mixed_pack_matches_keras() -> None:
    # Alone or in packs of one kind the updates are bit for bit Keras'; a pack
    # of all kinds at once differs in the last bit or two (elementwise kernels
    # vectorised differently over 11 replicas), hence the looser bound.
    params = [p for case in CASES.values() for p in case]
    assert _run(params) < 5e-6


def test_per_step_learning_rates_match_keras() -> None:
    params = CASES["adam"] + CASES["sgd"]
    lrs = np.random.default_rng(1).uniform(1e-4, 0.05, size=(STEPS, len(params))).astype(np.float32)
    assert _run(params, lrs) < 1e-6


def test_clip_and_norm_per_replica() -> None:
    g = tf.constant(np.arange(12, dtype=np.float32).reshape(2, 6))
    clipped = clip_by_norm(g, tf.constant([1.0, 0.0]))
    np.testing.assert_allclose(np.linalg.norm(clipped.numpy()[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clipped.numpy()[1], g.numpy()[1])
    norms = global_norm([g, 2 * g]).numpy()
    np.testing.assert_allclose(norms, np.sqrt(5) * np.linalg.norm(g.numpy(), axis=1), rtol=1e-6)


def test_inactive_replicas_are_frozen() -> None:
    hyper = hyper_from_params([{"optimizer": "adam"}, {"optimizer": "sgd"}])
    p = [tf.ones((2, 3))]
    m, v = init_slots(p)
    new_p, _, _ = apply_updates(
        p,
        [tf.ones((2, 3))],
        m,
        v,
        tf.constant(0.0),
        tf.constant([0.1, 0.1]),
        hyper.as_tensors(),
        hyper.kinds,
        active=tf.constant([True, False]),
    )
    assert np.all(new_p[0].numpy()[0] < 1.0)
    np.testing.assert_array_equal(new_p[0].numpy()[1], np.ones(3))
