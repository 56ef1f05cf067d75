"""The lone replica's compiled steps: one training step and the full-set evaluation.

``single.py`` caches one ``CompiledReplica`` per (workload, batch size, optimizer
structure) and reuses it for later replicas; the pack trainer takes
``dense_gradient`` from here so both trainers treat an Embedding's gradient alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from workers.training.metrics import hits
from workers.training.training_data import TrainingData

Step = Callable[..., Any]


@dataclass
class CompiledReplica:
    """A model with its optimizer and traced steps, reused by later replicas of the same shape."""

    workload: Any  # kept so the id() in the cache key cannot be reused by another object
    model: Any
    optimizer: keras.optimizers.Optimizer
    train_step: Step
    eval_step: Step
    hvp: Step | None = None  # Hessian-vector product, traced when a sweep records sharpness
    gradient: Step | None = None  # the objective's gradient, for difference products (same)


def same_structure(a: Any, b: Any) -> bool:
    va, vb = a.variables, b.variables
    return len(va) == len(vb) and all(
        tuple(x.shape) == tuple(y.shape) and x.dtype == y.dtype for x, y in zip(va, vb, strict=True)
    )


def dense_gradient(g: Any) -> Any:
    """``g`` as a dense tensor (an Embedding's ``tf.IndexedSlices`` summed per row)."""
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


def make_train_step(
    model: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any], data: TrainingData, jit: bool
) -> Step:
    def step(x_all: tf.Tensor, y_all: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.gather(x_all, idx)
        y = tf.gather(y_all, idx)
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_mean(loss_fn(y, pred))
            objective = loss + tf.add_n(model.losses) if model.losses else loss
        grads = [dense_gradient(g) for g in tape.gradient(objective, model.trainable_variables)]
        norm = tf.linalg.global_norm(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, norm

    signature = [
        tf.TensorSpec(data.x.shape, data.x.dtype),
        tf.TensorSpec(data.y.shape, data.y.dtype),
        tf.TensorSpec([None], tf.int32),
    ]
    # autograph=False: graph code already, as Keras 3 layers are (they run on JAX too); not
    # converting it takes ~0.2 s off each first call (sensor_lstm 0.66 -> 0.48 s).
    compiled: Step = tf.function(step, input_signature=signature, jit_compile=jit, autograph=False)
    return compiled


def make_eval_step(
    model: Any, loss_fn: Callable[[Any, Any], Any], data: TrainingData, loss_spec: str, jit: bool
) -> Step:
    def evaluate(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pred = model(x, training=False)
        loss_sum = tf.reduce_sum(tf.cast(loss_fn(y, pred), tf.float64))
        hit = hits(data.kind, y, pred, loss_spec)
        return loss_sum, tf.reduce_sum(tf.cast(hit, tf.float64))

    signature = [
        tf.TensorSpec([None, *data.x.shape[1:]], data.x.dtype),
        tf.TensorSpec([None, *data.y.shape[1:]], data.y.dtype),
    ]
    compiled: Step = tf.function(evaluate, input_signature=signature, jit_compile=jit, autograph=False)
    return compiled
