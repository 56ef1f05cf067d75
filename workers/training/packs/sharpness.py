"""Every replica's sharpness at once: one vectorised Lanczos iteration over the replica axis.

The packed objective is the sum of the replicas' independent losses, so its
Hessian with respect to the stacked weights is block diagonal, one block per
replica: one Hessian-vector product of the sum gives every replica's own
``H_k v_k``, and a Lanczos iteration with per-replica coefficients
(``lanczos.top_eigenvalue(batched=True)``) converges to every replica's top
eigenvalue together; with a tolerance (``compact``) each replica stops at its
own bound and the products go on for the others only, and replicas with the
same operator are iterated once (``distinct_rows``). The quantities, the
preconditioners and the thresholds are those of ``workers.training.sharpness``
(and of the single trainer, ``single_sharpness``): the preconditioner comes
from the pack's vectorised second-moment slots (``vector_optimizers``),
selected per replica.

With ``examples`` each replica takes the Hessian on its own subset (drawn by its
data seed), so the forward pass gets each replica its own inputs; on the whole
set the input is shared. Exact products run LSTMs unfused (the fused kernel has
no second derivative); difference products run the training kernels.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from service.core.spec import RecordSharpness
from workers.training.interface import EpochRecord
from workers.training.lanczos import MatVec, Vectors, top_eigenvalue
from workers.training.metrics import per_sample_loss
from workers.training.packs.workload_data import WorkloadData
from workers.training.sharpness import (
    ADAPTIVE,
    Estimate,
    SecondOrderGuard,
    adam_inv_sqrt_preconditioner,
    difference_product,
    measured_at,
    rmsprop_inv_sqrt_preconditioner,
    rows_of,
    stability_threshold,
    start_vectors,
    subset_indices,
    symmetric_preconditioned,
    with_estimate,
)

if TYPE_CHECKING:  # the trainer imports this module
    from workers.training.packs.pack import Pack

# Examples per product call (per replica when inputs are not shared).
CHUNK = 512
_FN_CACHE_SIZE = 8
_fn_cache: OrderedDict[tuple[int, str, bool, str], tuple[Any, Callable[..., Vectors]]] = OrderedDict()

# Per stacked replica: the sharpness and the preconditioned sharpness (None for SGD).
Estimates = list[tuple[float, float | None]]


def _objective(plan: Any, loss_fn: Any, shared: bool, fused: bool) -> Callable[..., tf.Tensor]:
    """``total(x, y, w)``: the sum of the replicas' mean losses, inference mode."""

    def total(x: tf.Tensor, y: tf.Tensor, w: list[tf.Tensor]) -> tf.Tensor:
        out, _ = plan.forward(w, x, shared_input=shared, training=False, fused_rnn=fused)
        yk = tf.broadcast_to(y[None], tf.concat([tf.shape(w[0])[:1], tf.shape(y)], 0)) if shared else y
        return tf.reduce_sum(tf.reduce_mean(loss_fn(yk, out), axis=1))

    return total


def _with(w: list[tf.Tensor], trainable: list[int], values: list[tf.Tensor]) -> list[tf.Tensor]:
    out = list(w)
    for j, t in zip(trainable, values, strict=True):
        out[j] = t
    return out


def _make_hvp(plan: Any, loss: str, shared: bool) -> Callable[..., Vectors]:
    """``hvp(x, y, w, v) -> H v`` of the sum of the replicas' mean losses (block diagonal H).

    ``v`` and the result are per trainable weight (``plan.trainable_mask``): the Hessian
    is the trainable weights', as the optimizer sees them (not BatchNormalization's
    moving statistics, which inference mode reads). LSTMs run unfused: the fused kernel
    has no second derivative.
    """
    total = _objective(plan, per_sample_loss(loss), shared, fused=False)
    trainable = plan.trainable_indices

    def hvp(x: tf.Tensor, y: tf.Tensor, w: list[tf.Tensor], v: list[tf.Tensor]) -> list[tf.Tensor]:
        wt = [w[j] for j in trainable]
        with tf.GradientTape() as outer:
            outer.watch(wt)
            with tf.GradientTape() as inner:
                inner.watch(wt)
                value = total(x, y, _with(w, trainable, wt))
            grads = inner.gradient(value, wt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            gv = tf.add_n([tf.reduce_sum(g * vi) for g, vi in zip(grads, v, strict=True)])
        return list(outer.gradient(gv, wt, unconnected_gradients=tf.UnconnectedGradients.ZERO))

    # autograph=False: graph code already (see epoch_function.py).
    compiled: Callable[..., Vectors] = tf.function(hvp, reduce_retracing=True, autograph=False)
    return compiled


def _make_gradient(plan: Any, loss: str, shared: bool) -> Callable[..., Vectors]:
    """``gradient(x, y, w) -> dL/dw`` per trainable weight, through the kernels training uses.

    For ``products: difference``: the fused LSTM kernel (forward and backward in C++, ~4x
    a double backward's speed on sensor_lstm) has a gradient but no second derivative.
    """
    total = _objective(plan, per_sample_loss(loss), shared, fused=True)
    trainable = plan.trainable_indices

    def gradient(x: tf.Tensor, y: tf.Tensor, w: list[tf.Tensor]) -> list[tf.Tensor]:
        wt = [w[j] for j in trainable]
        with tf.GradientTape() as tape:
            tape.watch(wt)
            value = total(x, y, _with(w, trainable, wt))
        return list(tape.gradient(value, wt, unconnected_gradients=tf.UnconnectedGradients.ZERO))

    compiled: Callable[..., Vectors] = tf.function(gradient, reduce_retracing=True, autograph=False)
    return compiled


def _cached(kind: str, plan: Any, loss: str, shared: bool) -> Callable[..., Vectors]:
    """The product (``hvp``) or gradient function of this plan, traced once per plan and loss."""
    key = (id(plan), loss, shared, kind)
    hit = _fn_cache.get(key)
    if hit is not None and hit[0] is plan:
        _fn_cache.move_to_end(key)
        return hit[1]
    fn = (_make_hvp if kind == "hvp" else _make_gradient)(plan, loss, shared)
    _fn_cache[key] = (plan, fn)
    while len(_fn_cache) > _FN_CACHE_SIZE:
        _fn_cache.popitem(last=False)
    return fn


class PackSharpness:
    """The sharpness of every replica of one pack, epoch after epoch (warm-started per replica)."""

    def __init__(self, options: RecordSharpness, data: WorkloadData, loss: str, pack: Pack) -> None:
        self.options = options
        self._seeds = [r.spec.data_seed for r in pack.replicas]
        self._data = data
        # Each replica's subset by key, stacked per call: a pack that drops replicas between
        # epochs (or pads) gets its current replicas' subsets.
        self._subsets = {
            r.spec.key: subset_indices(data.n, options.examples, r.spec.data_seed) for r in pack.replicas
        }
        self._shared = options.examples is None or options.examples >= data.n
        self._x, self._y = data.x, data.y
        self._trainable = data.plan.trainable_indices
        exact = options.products == "exact"
        kind = "hvp" if exact else "gradient"
        self._fn = _cached(kind, data.plan, loss, self._shared)
        # Warm starts per replica (by key), so that they follow a replica if the pack changes.
        shapes = [tuple(pack.state.weights[j].shape[1:]) for j in self._trainable]
        self._v = {
            r.spec.key: start_vectors(shapes, s) for r, s in zip(pack.replicas, self._seeds, strict=True)
        }
        self._u = {k: list(v) for k, v in self._v.items()}
        self._guard = SecondOrderGuard("pack")

    def _stacked(self, pack: Pack, store: dict[Any, Vectors]) -> Vectors:
        rows = pack.padded([store[r.spec.key] for r in pack.replicas])
        return [tf.stack([row[j] for row in rows]) for j in range(len(rows[0]))]

    def _unstack(self, pack: Pack, store: dict[Any, Vectors], v: Vectors) -> None:
        for i, r in enumerate(pack.replicas):
            store[r.spec.key] = [t[i] for t in v]

    def _over_subset(
        self, call: Callable[[tf.Tensor, tf.Tensor], Vectors], rows: np.ndarray | None = None
    ) -> Vectors:
        """``call``'s mean over the whole subset (of the replicas at ``rows``), in weighted chunks."""
        n = int(self._x.shape[0 if self._shared else 1])
        x, y = self._x, self._y
        if rows is not None and not self._shared:  # each replica its own subset
            x, y = tf.gather(x, rows), tf.gather(y, rows)
        total: Vectors | None = None
        for start in range(0, n, CHUNK):
            if self._shared:
                xs, ys = x[start : start + CHUNK], y[start : start + CHUNK]
                size = int(xs.shape[0])
            else:
                xs, ys = x[:, start : start + CHUNK], y[:, start : start + CHUNK]
                size = int(xs.shape[1])
            part = [h * (size / n) for h in call(xs, ys)]
            total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
        assert total is not None
        return total

    def matvec(self, w: Sequence[tf.Tensor]) -> MatVec:
        """``(v, rows) -> H v`` (trainable weights) for stacked weights ``w``, over the whole subset.

        ``rows`` (optional): the product of those replicas only, ``v`` holding theirs
        (``lanczos.top_eigenvalue(compact=True)``): the replica axis is independent.
        """
        w = list(w)
        trainable = self._trainable
        if self.options.products == "exact":

            def exact(v: Vectors, rows: np.ndarray | None = None) -> Vectors:
                at = rows_of(w, rows)
                return self._over_subset(lambda xs, ys: self._fn(xs, ys, at, v), rows)

            return exact

        def gradient_at(wt: Vectors, rows: np.ndarray | None) -> Vectors:
            at = _with(rows_of(w, rows), trainable, wt)
            return self._over_subset(lambda xs, ys: self._fn(xs, ys, at), rows)

        return difference_product(gradient_at, [w[j] for j in trainable], batched=True)

    def estimate(self, pack: Pack, epoch: int) -> Estimates | None:
        """Each stacked replica's estimates at ``epoch``, or None at an epoch not measured.

        As in the single trainer, a model without second derivatives trains on unmeasured.
        """
        if not measured_at(epoch, self.options):
            return None
        return self._guard.run(lambda: self._estimate(pack))

    def use_subsets(self, pack: Pack) -> np.ndarray:
        """Point the products at ``pack``'s replicas' subsets; returns them ``[K, S]`` (``[K, 0]`` shared)."""
        k = int(pack.state.weights[0].shape[0])
        if self._shared:
            return np.zeros((k, 0), np.int32)
        subsets = np.stack(pack.padded([self._subsets[r.spec.key] for r in pack.replicas]))
        self._x, self._y = tf.gather(self._data.x, subsets), tf.gather(self._data.y, subsets)
        return subsets

    def _estimate(self, pack: Pack) -> Estimates:
        subsets = self.use_subsets(pack)
        matvec = self.matvec(pack.state.weights)
        weights = [pack.state.weights[j] for j in self._trainable]
        lam, v = self._top(matvec, self._stacked(pack, self._v), [*weights, subsets])
        self._unstack(pack, self._v, v)
        pre: list[float | None] = [None] * len(pack.replicas)
        inv_sqrt_p = self._inv_sqrt_preconditioner(pack)
        if inv_sqrt_p is not None:
            op = symmetric_preconditioned(matvec, inv_sqrt_p)
            lam_p, u = self._top(op, self._stacked(pack, self._u), [*weights, *inv_sqrt_p, subsets])
            self._unstack(pack, self._u, u)
            for i, r in enumerate(pack.replicas):
                if r.resolved["optimizer"] in ADAPTIVE:
                    pre[i] = float(lam_p[i])
        return [(float(lam[i]), pre[i]) for i in range(len(pack.replicas))]

    def _top(self, op: MatVec, start: Vectors, operator_of: Sequence[Any]) -> tuple[tf.Tensor, Vectors]:
        """Every replica's top eigenpair of ``op``, computed once per distinct operator.

        Replicas whose ``operator_of`` rows are equal have the same operator: at epoch 0
        every replica of an init seed has the same weights (a learning-rate x beta_1
        grid of 10 shares 1 Hessian per seed), and padding replicas copy replica 0.
        The iteration runs on one replica of each (its start vector), and its members
        get its estimate and vector.
        """
        reps, owner = distinct_rows(operator_of)
        iters, tol = self.options.iterations, self.options.tolerance
        if len(reps) == len(owner):
            return top_eigenvalue(op, start, iters, batched=True, tolerance=tol, compact=True)

        def on_reps(v: Vectors, rows: np.ndarray | None = None) -> Vectors:
            return op(v, reps if rows is None else reps[rows])

        start = rows_of(start, reps)
        lam, v = top_eigenvalue(on_reps, start, iters, batched=True, tolerance=tol, compact=True)
        return tf.gather(lam, owner), rows_of(v, owner)

    def _inv_sqrt_preconditioner(self, pack: Pack) -> Vectors | None:
        """Per replica, Adam's or RMSprop's ``P^-1/2`` (ones for SGD replicas); None before a step."""
        t = float(pack.state.iterations.numpy())
        h = pack.hyper_t
        if t == 0 or not ({"adam", "rmsprop"} & set(pack.hyper.kinds)):
            return None
        slots = [pack.state.v[j] for j in self._trainable]
        adam = adam_inv_sqrt_preconditioner(slots, t, h["beta_1"], h["beta_2"], h["epsilon"])
        rms = rmsprop_inv_sqrt_preconditioner(slots, h["epsilon"])
        out = []
        for a, r in zip(adam, rms, strict=True):
            shape = [-1] + [1] * (len(a.shape) - 1)
            is_adam = tf.reshape(h["is_adam"], shape) > 0
            is_rms = tf.reshape(h["is_rmsprop"], shape) > 0
            out.append(tf.where(is_adam, a, tf.where(is_rms, r, tf.ones_like(a))))
        return out


def distinct_rows(arrays: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows equal in every array: (one row index per distinct row, each row's index into those)."""
    host = [np.ascontiguousarray(a.numpy() if hasattr(a, "numpy") else a) for a in arrays]
    k = int(host[0].shape[0])
    first: dict[bytes, int] = {}
    reps: list[int] = []
    owner = np.empty(k, np.int64)
    for i in range(k):
        digest = hashlib.blake2b(digest_size=16)
        for a in host:
            digest.update(a[i].tobytes())
        key = digest.digest()
        if key not in first:
            first[key] = len(reps)
            reps.append(i)
        owner[i] = first[key]
    return np.asarray(reps, np.int64), owner


def with_sharpness(
    record: EpochRecord, estimates: Estimates | None, i: int, resolved: dict[str, Any]
) -> EpochRecord:
    """Replica ``i``'s record with its estimates and threshold (unchanged when not measured)."""
    if estimates is None:
        return record
    sharpness, preconditioned = estimates[i]
    threshold = stability_threshold(resolved, record.learning_rate)
    return with_estimate(record, Estimate(sharpness, preconditioned, threshold))
