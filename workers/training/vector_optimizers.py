"""Keras 3's optimizers, vectorised over a leading replica axis.

A training pack stacks the weights of K replicas along axis 0 (a kernel of
shape ``(in, out)`` becomes ``(K, in, out)``). This module updates such
stacked weights with the update rules of ``keras.optimizers.Adam``,
``AdamW``, ``RMSprop`` and ``SGD`` (momentum, Nesterov), each replica with its
own hyperparameters, given as float32 tensors of shape ``[K]``.

Why not Keras' optimizers: they bake beta_1, beta_2, epsilon, rho and
momentum into the traced graph as Python floats (only the learning rate is a
variable), so every distinct configuration would cost a new compilation, and
one optimizer instance cannot hold K different betas. Here hyperparameters are
tensor *inputs*: one compiled step serves every pack of the same shapes.

The arithmetic follows Keras' ``update_step`` op for op (same operand order,
``1 - beta`` computed in float64 on the host the way Keras computes it from a
Python float) so that a replica's update agrees with Keras' to float32
rounding; ``tests/workers/test_vector_optimizers.py`` checks it update for
update. Which optimizers occur in a pack is static (``kinds``): a pack of Adam
replicas compiles only Adam's code; a mixed pack computes each present rule
and selects per replica.

Clipping follows Keras' ``clipnorm``: each gradient tensor of a replica is
clipped to its own norm individually (``_clip_by_norm``), not the global norm.
Weight decay follows ``AdamW`` (decoupled, ``w -= w * wd * lr`` before the
Adam step, applied to every trainable weight).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

OptimizerKind = str  # "adam" | "rmsprop" | "sgd" (adamw is adam with weight decay)
KINDS = ("adam", "rmsprop", "sgd")

# Keras 3 defaults for parameters a sweep leaves out.
DEFAULTS: dict[str, dict[str, float | bool]] = {
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.0},
    "adamw": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.004},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "sgd": {"momentum": 0.0, "nesterov": False},
}

# Names of the per-replica hyperparameter tensors, all float32 of shape [K].
HYPER_NAMES = (
    "is_adam",
    "is_rmsprop",
    "is_sgd",
    "beta_1",
    "one_minus_beta_1",
    "beta_2",
    "one_minus_beta_2",
    "epsilon",
    "rho",
    "one_minus_rho",
    "momentum",
    "nesterov",
    "weight_decay",
    "clipnorm",
)


def optimizer_kind(name: str) -> OptimizerKind:
    name = name.lower()
    if name in ("adam", "adamw"):
        return "adam"
    if name in ("rmsprop", "sgd"):
        return name
    raise ValueError(f"optimizer {name!r} is not one of adam, adamw, rmsprop, sgd")


@dataclass(frozen=True)
class VectorHyper:
    """Per-replica hyperparameters as numpy float32 arrays of shape [K]."""

    values: Mapping[str, np.ndarray]
    kinds: frozenset[OptimizerKind]

    @property
    def size(self) -> int:
        return int(next(iter(self.values.values())).shape[0])

    def as_tensors(self) -> dict[str, tf.Tensor]:
        return {k: tf.constant(self.values[k], tf.float32) for k in HYPER_NAMES}


def hyper_from_params(params: Sequence[Mapping[str, Any]]) -> VectorHyper:
    """Per-replica hyperparameter arrays from each replica's (resolved) params.

    ``params[i]["optimizer"]`` names the optimizer; parameters that are absent
    take Keras' defaults. ``clipnorm`` of 0 or None means no clipping.
    Replicas that pad a pack can be given ``{"optimizer": <any present>}``.
    """
    cols: dict[str, list[float]] = {k: [] for k in HYPER_NAMES}
    kinds: set[OptimizerKind] = set()
    for p in params:
        name = str(p.get("optimizer", "adam")).lower()
        kind = optimizer_kind(name)
        kinds.add(kind)
        d = {**DEFAULTS[name], **{k: v for k, v in p.items() if v is not None}}
        b1 = float(d.get("beta_1", 0.0))
        b2 = float(d.get("beta_2", 0.0))
        rho = float(d.get("rho", 0.0))
        cols["is_adam"].append(float(kind == "adam"))
        cols["is_rmsprop"].append(float(kind == "rmsprop"))
        cols["is_sgd"].append(float(kind == "sgd"))
        # Keras computes ``1 - self.beta_1`` on a Python float (float64) and
        # casts the result; computing it in float32 from float32(beta) would
        # differ in the last bits.
        cols["beta_1"].append(b1)
        cols["one_minus_beta_1"].append(1.0 - b1)
        cols["beta_2"].append(b2)
        cols["one_minus_beta_2"].append(1.0 - b2)
        cols["epsilon"].append(float(d.get("epsilon", 1e-7)))
        cols["rho"].append(rho)
        cols["one_minus_rho"].append(1.0 - rho)
        cols["momentum"].append(float(d.get("momentum", 0.0)))
        cols["nesterov"].append(float(bool(d.get("nesterov", False))))
        cols["weight_decay"].append(float(d.get("weight_decay", 0.0) or 0.0) if name == "adamw" else 0.0)
        cols["clipnorm"].append(float(p.get("clipnorm") or 0.0))
    values = {k: np.asarray(v, dtype=np.float32) for k, v in cols.items()}
    return VectorHyper(values=values, kinds=frozenset(kinds))


def init_slots(params: Sequence[tf.Tensor]) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    """Zeroed optimizer slots: first moment/momentum and second moment/velocity."""
    return [tf.zeros_like(p) for p in params], [tf.zeros_like(p) for p in params]


def _bcast(h: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A [K] vector shaped to broadcast against a stacked [K, ...] tensor."""
    return tf.reshape(h, [-1] + [1] * (len(like.shape) - 1))


def per_replica_sq_norm(t: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.square(t), axis=list(range(1, len(t.shape))))


def global_norm(grads: Sequence[tf.Tensor]) -> tf.Tensor:
    """Global L2 norm of each replica's gradient, shape [K]."""
    return tf.sqrt(tf.add_n([per_replica_sq_norm(g) for g in grads]))


def clip_by_norm(g: tf.Tensor, clipnorm: tf.Tensor) -> tf.Tensor:
    """Keras' ``_clip_by_norm`` per replica; replicas with clipnorm <= 0 are left as they are."""
    axes = list(range(1, len(g.shape)))
    l2sum = tf.reduce_sum(tf.square(g), axis=axes, keepdims=True)
    pred = l2sum > 0
    l2sum_safe = tf.where(pred, l2sum, tf.ones_like(l2sum))
    l2norm = tf.where(pred, tf.sqrt(l2sum_safe), l2sum)
    c = _bcast(clipnorm, g)
    clipped = (g * c) / tf.maximum(l2norm, c)
    return tf.where(c > 0, clipped, g)


def apply_updates(
    params: Sequence[tf.Tensor],
    grads: Sequence[tf.Tensor],
    m: Sequence[tf.Tensor],
    v: Sequence[tf.Tensor],
    iterations: tf.Tensor,
    lr: tf.Tensor,
    hyper: Mapping[str, tf.Tensor],
    kinds: frozenset[OptimizerKind],
    active: tf.Tensor | None = None,
) -> tuple[list[tf.Tensor], list[tf.Tensor], list[tf.Tensor]]:
    """One optimizer step for every replica; returns new (params, m, v).

    ``iterations`` is the number of steps already taken (Keras'
    ``optimizer.iterations`` before the step), a float32 scalar or [K].
    ``lr`` is each replica's learning rate for this step, shape [K].
    Replicas with ``active`` False keep their weights and slots unchanged.
    """
    local_step = iterations + 1.0
    new_p: list[tf.Tensor] = []
    new_m: list[tf.Tensor] = []
    new_v: list[tf.Tensor] = []
    for p, g, m0, v0 in zip(params, grads, m, v, strict=True):
        g = clip_by_norm(g, hyper["clipnorm"])
        h = {k: _bcast(t, p) for k, t in hyper.items()}
        lr_b = _bcast(lr, p)
        cands: list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]] = []
        if "adam" in kinds:
            # AdamW's decoupled decay first (zero for Adam: p - p*0*lr == p exactly).
            p_a = p - p * h["weight_decay"] * lr_b
            b1p = tf.pow(h["beta_1"], _bcast(tf.broadcast_to(local_step, tf.shape(lr)), p))
            b2p = tf.pow(h["beta_2"], _bcast(tf.broadcast_to(local_step, tf.shape(lr)), p))
            alpha = lr_b * tf.sqrt(1.0 - b2p) / (1.0 - b1p)
            m_a = m0 + (g - m0) * h["one_minus_beta_1"]
            v_a = v0 + (tf.square(g) - v0) * h["one_minus_beta_2"]
            p_a = p_a - (m_a * alpha) / (tf.sqrt(v_a) + h["epsilon"])
            cands.append((h["is_adam"], p_a, m_a, v_a))
        if "rmsprop" in kinds:
            v_r = h["rho"] * v0 + h["one_minus_rho"] * tf.square(g)
            inc = (lr_b * g) / tf.sqrt(v_r + h["epsilon"])
            # With momentum 0 Keras subtracts ``inc`` directly; 0*m + inc == inc exactly.
            m_r = h["momentum"] * m0 + inc
            p_r = p - m_r
            cands.append((h["is_rmsprop"], p_r, m_r, v_r))
        if "sgd" in kinds:
            mom = h["momentum"]
            m_s = m0 * mom - g * lr_b
            p_s = p + tf.where(h["nesterov"] > 0, m_s * mom - g * lr_b, m_s)
            cands.append((h["is_sgd"], p_s, m_s, v0))
        sel_p, sel_m, sel_v = cands[0][1:]
        for flag, cp, cm, cv in cands[1:]:
            use = flag > 0
            sel_p = tf.where(use, cp, sel_p)
            sel_m = tf.where(use, cm, sel_m)
            sel_v = tf.where(use, cv, sel_v)
        if active is not None:
            a = _bcast(active, p)
            sel_p = tf.where(a, sel_p, p)
            sel_m = tf.where(a, sel_m, m0)
            sel_v = tf.where(a, sel_v, v0)
        new_p.append(sel_p)
        new_m.append(sel_m)
        new_v.append(sel_v)
    return new_p, new_m, new_v
