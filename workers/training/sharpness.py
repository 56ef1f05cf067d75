"""Sharpness: the top eigenvalue of the training-loss Hessian, and its stability threshold.

What is measured, precisely (derivations and sources in docs/sharpness.md):

- ``sharpness``: the largest eigenvalue of ``H``, the Hessian of the training
  objective (mean per-sample loss, inference mode, plus ``model.losses``) with
  respect to the trainable weights, on the whole training set or on a fixed
  subset of ``examples`` examples drawn by the run's data seed
  (``subset_indices``). Lanczos on Hessian-vector products (double backward
  with ``tf.GradientTape``; ``workers.training.lanczos``), ``iterations``
  products per estimate (or fewer with ``tolerance``: stopped once the residual
  bound of every estimate is below that fraction of it); the estimate is the top
  Ritz value, the largest algebraic eigenvalue even when a negative one
  dominates in magnitude. Each estimate starts from the previous estimate's
  Ritz vector (warm start), the first from a Gaussian vector seeded by the data
  seed.
- ``preconditioned_sharpness`` (Adam, AdamW, RMSprop): the largest eigenvalue of
  ``P^-1 H`` with the optimizer's current preconditioner ``P`` (diagonal),
  computed as that of the symmetric ``P^-1/2 H P^-1/2`` (same eigenvalues).
  Following Cohen et al. 2022, Adam's update is ``w -= lr P^-1 m`` with ``m``
  the EMA of gradients (``m = b1 m + (1 - b1) g``), so with Keras' placement
  of epsilon (added to ``sqrt(v)``, not to ``sqrt(v_hat)``) after ``t`` updates
  ``P = (1 - b1^t) (sqrt(v_hat) + eps / sqrt(1 - b2^t))
  = (1 - b1^t) (sqrt(v) + eps) / sqrt(1 - b2^t)``; RMSprop's update is
  ``lr g / sqrt(v + eps)``, so ``P = sqrt(v + eps)``. Not measured before the
  first update (no second-moment estimate yet).
- ``stability_threshold``: the value the relevant quantity (the preconditioned
  sharpness for adaptive optimizers, the sharpness for SGD) is compared to, for
  the learning rate of the epoch's last update: ``stability_threshold``.

The Lanczos iteration serves a lone model (reductions over every axis) and a
pack (``batched``: reductions per replica over the leading replica axis: the
packed loss is a sum of independent replicas' losses, so its Hessian is block
diagonal and one iteration with per-replica coefficients gives every replica's
top eigenvalue at once).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf

from service.core.spec import RecordSharpness
from workers.training.interface import EpochRecord
from workers.training.lanczos import MatVec, Vectors

_T = TypeVar("_T")
logger = logging.getLogger(__name__)

ADAPTIVE = ("adam", "adamw", "rmsprop")


@dataclass(frozen=True)
class Estimate:
    """One measured epoch's curve fields (``service.core.records.CurvePoint``)."""

    sharpness: float
    preconditioned_sharpness: float | None
    stability_threshold: float | None


def with_estimate(record: EpochRecord, estimate: Estimate | None) -> EpochRecord:
    """The record with the estimate's fields; unchanged without one or when its loss is not finite."""
    if estimate is None or not math.isfinite(record.loss):
        return record
    return replace(
        record,
        sharpness=estimate.sharpness,
        preconditioned_sharpness=estimate.preconditioned_sharpness,
        stability_threshold=estimate.stability_threshold,
    )


def measured_at(epoch: int, options: RecordSharpness) -> bool:
    """Whether ``epoch`` (0 = initialisation) is one of the epochs the sharpness is estimated at."""
    return epoch % options.every == 0


def stability_threshold(resolved: Mapping[str, Any], learning_rate: float) -> float | None:
    """The threshold of ``resolved`` (``optimizers.resolve_optimizer_params``) at this lr.

    SGD: ``2 (1 + m) / lr`` (heavy ball, Keras' momentum; 2/lr at m = 0), Nesterov
    ``(2 + 2m) / ((1 + 2m) lr)``; Adam/AdamW: ``(2 + 2 b1) / ((1 - b1) lr)`` for the
    preconditioned sharpness; RMSprop: ``2 (1 + m) / lr`` for the preconditioned
    sharpness (2/lr without momentum). None for a non-positive learning rate.
    """
    lr = float(learning_rate)
    if not (math.isfinite(lr) and lr > 0):
        return None
    name = resolved["optimizer"]
    if name in ("adam", "adamw"):
        b1 = float(resolved["beta_1"])
        return (2.0 + 2.0 * b1) / ((1.0 - b1) * lr)
    m = float(resolved.get("momentum", 0.0))
    if name == "sgd" and resolved.get("nesterov"):
        return (2.0 + 2.0 * m) / ((1.0 + 2.0 * m) * lr)
    return 2.0 * (1.0 + m) / lr


def subset_indices(n: int, examples: int | None, data_seed: int) -> np.ndarray | None:
    """The fixed examples the Hessian is taken on: None for the whole set (``examples`` None or >= n).

    Drawn without replacement from a stream of the data seed distinct from the batch order's.
    """
    if examples is None or examples >= n:
        return None
    rng = np.random.default_rng([int(data_seed), 0x5A])
    return np.sort(rng.choice(n, size=int(examples), replace=False)).astype(np.int32)


def start_vectors(shapes: Sequence[Sequence[int]], seed: int) -> Vectors:
    """The first estimate's start vector: standard Gaussian, one tensor per weight."""
    rng = np.random.default_rng([int(seed), 0x5B])
    return [tf.constant(rng.standard_normal(tuple(s)).astype(np.float32)) for s in shapes]


def dot(a: Vectors, b: Vectors, batched: bool) -> tf.Tensor:
    """Inner product over all weights: a scalar, or ``[K]`` per replica when ``batched``."""
    terms = []
    for x, y in zip(a, b, strict=True):
        axes = list(range(1, len(x.shape))) if batched else None
        terms.append(tf.reduce_sum(x * y, axis=axes))
    return tf.add_n(terms)


def scale(vs: Vectors, s: tf.Tensor, batched: bool) -> Vectors:
    """``vs * s``, with ``s`` a scalar or (``batched``) one factor per replica."""
    if not batched:
        return [v * s for v in vs]
    return [v * tf.reshape(s, [-1] + [1] * (len(v.shape) - 1)) for v in vs]


# The step of a difference product, relative to the weights' size: e = DIFFERENCE_STEP (1 + |w|)
# along a unit direction; two errors bound it (docs/sharpness.md#difference-products). Larger
# steps leave the region where the gradient is linear: on sensor_lstm packs trained 10 epochs,
# central differences at 1e-5 were up to 4.6% off the double-backward products, forward ones at
# 1e-4 up to 357% (a trained 100-step LSTM bends on that scale). Smaller steps drown in float32:
# w + e v rounds each weight to its own precision, so the step taken is not quite e v (on the
# least-squares preset, 8 weights, up to 1.5% off at 3e-6). At 5e-6: within 1.2% on every
# sensor_lstm replica and 0.65% on least squares.
DIFFERENCE_STEP = 5e-6


def rows_of(vs: Vectors, rows: np.ndarray | None) -> Vectors:
    """The replicas at ``rows`` of stacked tensors (all of them for None)."""
    return list(vs) if rows is None else [tf.gather(v, rows) for v in vs]


def difference_product(
    gradient_at: Callable[[Vectors, np.ndarray | None], Vectors], w: Vectors, *, batched: bool
) -> MatVec:
    """``v -> (g(w + e v) - g(w - e v)) / 2e``, ``g = gradient_at``: ``H v`` to second order in ``e``.

    Central, not forward (``(g(w + e v) - g(w)) / e``, one gradient per product rather
    than two): a forward difference's error is first order in ``e``, and the step that
    keeps it small on an LSTM trained into high curvature is one where float32 rounding
    swamps the difference (see DIFFERENCE_STEP). ``e`` is per replica with ``batched``:
    each replica's weights have their own size. ``gradient_at(at, rows)`` is the
    gradient of the replicas at ``rows`` (all for None) at their weights ``at``; so is
    the product.
    """
    size = 1.0 + tf.sqrt(dot(w, w, batched))

    def apply(v: Vectors, rows: np.ndarray | None = None) -> Vectors:
        norm = tf.sqrt(dot(v, v, batched))
        sizes = size if rows is None else tf.gather(size, rows)
        e = DIFFERENCE_STEP * sizes / tf.where(norm > 0, norm, 1.0)
        at, step = rows_of(w, rows), scale(v, e, batched)
        ahead = gradient_at([a + d for a, d in zip(at, step, strict=True)], rows)
        behind = gradient_at([a - d for a, d in zip(at, step, strict=True)], rows)
        return scale([p - q for p, q in zip(ahead, behind, strict=True)], 0.5 / e, batched)

    return apply


def symmetric_preconditioned(matvec: MatVec, inv_sqrt_p: Vectors) -> MatVec:
    """``u -> P^-1/2 A P^-1/2 u``: same eigenvalues as ``P^-1 A``, and symmetric.

    Passes ``rows`` through (``top_eigenvalue(compact=True)``): the product of those replicas.
    """

    def apply(u: Vectors, *rows: np.ndarray | None) -> Vectors:
        d = rows_of(inv_sqrt_p, rows[0] if rows else None)
        inner = matvec([di * x for di, x in zip(d, u, strict=True)], *rows)
        return [di * x for di, x in zip(d, inner, strict=True)]

    return apply


def adam_inv_sqrt_preconditioner(
    v: Sequence[tf.Tensor], t: float, beta_1: Any, beta_2: Any, epsilon: Any
) -> Vectors:
    """``P^-1/2`` of Adam after ``t`` updates: ``P = (1 - b1^t) (sqrt(v) + eps) / sqrt(1 - b2^t)``.

    The hyperparameters are floats, or ``[K]``-shaped tensors broadcast over stacked weights.
    """
    out = []
    for vi in v:
        b1, b2, eps = (_bcast_like(h, vi) for h in (beta_1, beta_2, epsilon))
        p = (1.0 - b1**t) * (tf.sqrt(vi) + eps) / tf.sqrt(1.0 - b2**t)
        out.append(tf.math.rsqrt(p))
    return out


def rmsprop_inv_sqrt_preconditioner(v: Sequence[tf.Tensor], epsilon: Any) -> Vectors:
    """``P^-1/2`` of RMSprop: ``P = sqrt(v + eps)``."""
    return [tf.math.rsqrt(tf.sqrt(vi + _bcast_like(epsilon, vi))) for vi in v]


def _bcast_like(h: Any, like: tf.Tensor) -> Any:
    if isinstance(h, (int, float)):
        return float(h)
    return tf.reshape(h, [-1] + [1] * (len(like.shape) - 1))


class SecondOrderGuard:
    """Runs an estimate; a model without second derivatives trains on unmeasured.

    cuDNN's fused RNN kernels on a GPU, for one, have no gradient of their gradient: the
    first estimate's error is logged once and every later estimate is skipped, rather
    than failing a run whose training is fine.
    """

    def __init__(self, what: str) -> None:
        self.what = what  # "run" or "pack", for the log line
        self.failed = False

    def run(self, estimate: Callable[[], _T]) -> _T | None:
        if self.failed:
            return None
        try:
            return estimate()
        except (LookupError, tf.errors.OpError) as exc:
            logger.warning(
                "sharpness not measured for this %s: %s: %s (`products: difference` needs only "
                "first derivatives)",
                self.what,
                type(exc).__name__,
                exc,
            )
            self.failed = True
            return None
