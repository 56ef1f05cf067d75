"""The single trainer's sharpness estimates: one Keras model, its Keras optimizer's state.

What is measured is defined in ``workers.training.sharpness``; this module applies
it to a lone replica: Hessian-vector products of the model's training objective by
double backward (or, with ``products: difference``, as a difference of two
gradients at weights moved along the vector), in chunks of the evaluation batch
size, and the preconditioner read from the Keras optimizer's second-moment slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from service.core.spec import RecordSharpness
from workers.training.lanczos import MatVec, Vectors, top_eigenvalue
from workers.training.sharpness import (
    ADAPTIVE,
    Estimate,
    SecondOrderGuard,
    adam_inv_sqrt_preconditioner,
    difference_product,
    measured_at,
    rmsprop_inv_sqrt_preconditioner,
    stability_threshold,
    start_vectors,
    subset_indices,
    symmetric_preconditioned,
)

_Hvp = Callable[..., Any]


def _objective(model: Any, loss_fn: Callable[[Any, Any], Any]) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``objective(x, y)``: ``mean loss + model.losses``, inference mode (no dropout), so
    that its Hessian is that of a fixed function."""

    def objective(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        loss = tf.reduce_mean(loss_fn(y, model(x, training=False)))
        return loss + tf.add_n(model.losses) if model.losses else loss

    return objective


def make_hvp(
    model: Any, loss_fn: Callable[[Any, Any], Any], x_spec: tf.TensorSpec, y_spec: tf.TensorSpec
) -> _Hvp:
    """``hvp(x, y, v) -> H v``: the Hessian of the objective (``_objective``) on (x, y), times v."""
    weights = model.trainable_variables
    objective = _objective(model, loss_fn)

    def hvp(x: tf.Tensor, y: tf.Tensor, v: list[tf.Tensor]) -> list[tf.Tensor]:
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                value = objective(x, y)
            grads = inner.gradient(value, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            gv = tf.add_n([tf.reduce_sum(g * vi) for g, vi in zip(grads, v, strict=True)])
        return list(outer.gradient(gv, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO))

    v_spec = [tf.TensorSpec(w.shape, tf.float32) for w in weights]
    # autograph=False: graph code already, as Keras 3 layers are (they run on JAX too).
    compiled: _Hvp = tf.function(hvp, input_signature=[x_spec, y_spec, v_spec], autograph=False)
    return compiled


def make_gradient(
    model: Any, loss_fn: Callable[[Any, Any], Any], x_spec: tf.TensorSpec, y_spec: tf.TensorSpec
) -> _Hvp:
    """``gradient(x, y) -> dL/dw`` of the same objective at the model's current weights.

    The gradient runs every kernel training runs (cuDNN's fused RNNs on a GPU among
    them), which a double backward cannot.
    """
    weights = model.trainable_variables
    objective = _objective(model, loss_fn)

    def gradient(x: tf.Tensor, y: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            value = objective(x, y)
        return list(tape.gradient(value, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO))

    compiled: _Hvp = tf.function(gradient, input_signature=[x_spec, y_spec], autograph=False)
    return compiled


class LoneSharpness:
    """One replica's sharpness estimates, epoch after epoch (warm-started Lanczos)."""

    def __init__(
        self,
        *,
        options: RecordSharpness,
        product_fn: _Hvp,
        model: Any,
        optimizer: keras.optimizers.Optimizer,
        resolved: dict[str, Any],
        x: tf.Tensor,
        y: tf.Tensor,
        data_seed: int,
        chunk: int,
    ) -> None:
        self.options = options
        self._fn = product_fn  # make_hvp's, or make_gradient's for difference products
        self._weights = model.trainable_variables
        self._optimizer = optimizer
        self._resolved = resolved
        idx = subset_indices(int(x.shape[0]), options.examples, data_seed)
        self._x = x if idx is None else tf.gather(x, idx)
        self._y = y if idx is None else tf.gather(y, idx)
        self._chunk = max(1, chunk)
        shapes = [tuple(w.shape) for w in model.trainable_variables]
        self._v = start_vectors(shapes, data_seed)
        self._u = list(self._v)
        self._guard = SecondOrderGuard("run")

    def _over_subset(self, call: Callable[[tf.Tensor, tf.Tensor], Vectors]) -> Vectors:
        """``call``'s mean over the whole subset: chunk results weighted by their share."""
        n = int(self._x.shape[0])
        total: Vectors | None = None
        for start in range(0, n, self._chunk):
            xs, ys = self._x[start : start + self._chunk], self._y[start : start + self._chunk]
            share = int(xs.shape[0]) / n
            part = [h * share for h in call(xs, ys)]
            total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
        assert total is not None
        return total

    def matvec(self, v: Vectors) -> Vectors:
        """``H v`` on the whole subset by double backward."""
        return self._over_subset(lambda xs, ys: self._fn(xs, ys, v))

    def _difference_matvec(self, w: Vectors) -> MatVec:
        """``H v`` as a difference of gradients around ``w`` (the weights as trained)."""

        def gradient_at(at: Vectors, rows: object = None) -> Vectors:  # one replica: no rows
            for var, value in zip(self._weights, at, strict=True):
                var.assign(value)
            return self._over_subset(self._fn)

        return difference_product(gradient_at, w, batched=False)

    def estimate(self, epoch: int, learning_rate: float) -> Estimate | None:
        """The estimates at ``epoch``, measured on the current weights; None at epochs not measured.

        A model whose ops have no second derivative (cuDNN's fused RNN kernels on a GPU) is
        trained without the estimates rather than failing the run: logged once, then None.
        """
        if not measured_at(epoch, self.options):
            return None
        return self._guard.run(lambda: self._estimate(learning_rate))

    def _estimate(self, learning_rate: float) -> Estimate:
        if self.options.products == "exact":
            return self._estimate_with(self.matvec, learning_rate)
        trained = [tf.identity(var) for var in self._weights]
        try:
            return self._estimate_with(self._difference_matvec(trained), learning_rate)
        finally:  # training goes on from the weights as trained, whatever happened
            for var, value in zip(self._weights, trained, strict=True):
                var.assign(value)

    def _estimate_with(self, matvec: MatVec, learning_rate: float) -> Estimate:
        iters, tol = self.options.iterations, self.options.tolerance
        lam, self._v = top_eigenvalue(matvec, self._v, iters, tolerance=tol)
        preconditioned = None
        inv_sqrt_p = self._inv_sqrt_preconditioner()
        if inv_sqrt_p is not None:
            op: MatVec = symmetric_preconditioned(matvec, inv_sqrt_p)
            lam_p, self._u = top_eigenvalue(op, self._u, iters, tolerance=tol)
            preconditioned = float(lam_p)
        return Estimate(float(lam), preconditioned, stability_threshold(self._resolved, learning_rate))

    def _inv_sqrt_preconditioner(self) -> Vectors | None:
        name = self._resolved["optimizer"]
        t = int(keras.ops.convert_to_numpy(self._optimizer.iterations))
        if name not in ADAPTIVE or t == 0:
            return None
        v = [tf.convert_to_tensor(s) for s in self._optimizer._velocities]
        if name == "rmsprop":
            return rmsprop_inv_sqrt_preconditioner(v, self._resolved["epsilon"])
        r = self._resolved
        return adam_inv_sqrt_preconditioner(v, float(t), r["beta_1"], r["beta_2"], r["epsilon"])
