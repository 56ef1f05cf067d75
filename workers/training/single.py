"""The single trainer: each replica trained alone with a custom loop.

It is the reference the pack trainer must match number for number (up to
float round-off), and the baseline of the benchmarks. Semantics:

- Effective params: ``{**workload.default_params, **replica.params}``; the
  optimizer and schedule follow ``workers.training.optimizers``; seeds and
  batch order follow ``workers.training.data_order``; loss and accuracy follow
  ``workers.training.metrics``. Inputs are cast to float32.
- One **step**: gather the batch, forward with ``training=True`` (dropout on),
  loss = mean per-sample loss (+ ``model.losses`` in the objective), gradient,
  ``grad_norm`` = global L2 norm over all trainable variables of that
  gradient **before clipping**, then ``optimizer.apply_gradients``.
- **Epoch 0** is the evaluation at initialisation, before any step:
  ``running_loss`` and ``grad_norm`` are ``None``.
- **Epoch e >= 1** record: ``loss``/``accuracy`` on the full training set
  after the epoch's last step (``training=False``, dropout off);
  ``running_loss`` = mean of the epoch's mini-batch losses; ``val_loss`` /
  ``val_accuracy`` likewise on the validation data when the dataset has it;
  ``learning_rate`` = the lr the epoch's last update used (``lr_at(step =
  global_steps - 1)``; epoch 0 records ``lr_at(0)``), so a reduce-on-plateau
  cut decided at the end of epoch e shows from record e + 1, as in Keras'
  logs; ``grad_norm`` = mean over the epoch's steps of the pre-clipping
  global gradient norm.
- **Dense gradients**: an Embedding's gradient (``tf.IndexedSlices`` in
  TensorFlow, one slice per token, repeated ids not summed) is made dense
  before its norm and the optimizer step, so ``grad_norm``, clipping and
  Adam/RMSprop's second moments see the gradient itself, as on Keras' JAX
  and torch backends (TensorFlow's sparse update squares each token's slice
  apart: for an id seen twice in a batch ``g1² + g2²``, not ``(g1 + g2)²``).
- **Non-finite**: the replica stops at the first non-finite mini-batch loss
  (checked after every step) or full-training-set loss (checked after every
  epoch) with status ``nonfinite``. For a mini-batch the last record has
  ``loss`` = that non-finite value, ``accuracy``/``val_*`` ``None``,
  ``running_loss`` and ``grad_norm`` over the steps run in that epoch.
- **reduce_on_plateau**: after each epoch e >= 1 the ``PlateauController``
  sees val_loss (or loss; see optimizers) and may lower the lr for the next
  epoch.
- **Observer**: ``on_epoch`` is called after every record (epoch 0 included)
  with that replica's record; ``should_stop`` is checked after it, between
  epochs. A stop marks the current replica and every replica not yet started
  ``cancelled``.
- **Errors**: an exception while training a replica gives that replica
  status ``error`` with the message and traceback; the next replica trains.
- **Step losses** (``TrainingPlan.record_steps``): ``(s, loss)`` for every 0-based
  global step ``s`` with ``s % stride == 0``, ``stride = ceil(epochs *
  steps_per_epoch / 500)`` (at most ~500 points per run), plus the
  non-finite step if the run stops on one.
- **Sharpness** (``TrainingPlan.sharpness``): at every measured epoch with a
  finite loss, the record also carries ``sharpness``,
  ``preconditioned_sharpness`` and ``stability_threshold`` measured on the
  weights and optimizer state at the end of that epoch (``single_sharpness``).

Speed: tracing a ``tf.function`` step costs ~1.5 s, so the model, optimizer
and compiled step are cached per (workload, batch size, optimizer structure)
and reused by later replicas: the cached model's variables (weights and
dropout seed state) are overwritten with a freshly seeded model's, the
optimizer's slots and iteration count are zeroed and its lr assigned. That is
exactly a fresh replica because every Keras slot of adam/adamw/rmsprop/sgd
starts at zero. The learning rate is a variable (not part of the key) unless
a schedule object holds it.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from service.core.records import RunTraining
from service.core.states import RunStatus
from workers.training.data_order import BatchOrder, build_initial_model
from workers.training.interface import (
    EpochRecord,
    ReplicaResult,
    ReplicaSpec,
    TrainingObserver,
)
from workers.training.metrics import LabelKind, per_sample_loss
from workers.training.optimizers import (
    PlateauController,
    build_optimizer,
    lr_at,
    resolve_optimizer_params,
    set_learning_rate,
)
from workers.training.sharpness import with_estimate
from workers.training.single_sharpness import LoneSharpness, make_gradient, make_hvp
from workers.training.single_steps import CompiledReplica, make_eval_step, make_train_step, same_structure
from workers.training.training_data import TrainingData, load_training_data
from workers.training.training_plan import TrainingPlan

logger = logging.getLogger(__name__)

MAX_STEP_POINTS = 500
_CACHE_SIZE = 8


class _Cancelled(Exception):
    pass


def _tf_device(device: str) -> str | None:
    if device == "auto":
        return None
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        return "/GPU:0"
    if device.startswith("gpu:"):
        return f"/GPU:{int(device[4:])}"
    raise ValueError(f"device {device!r}: use cpu, gpu, gpu:N or auto")


class SingleTrainer:
    """Trains replicas one after another (implements ``workers.training.interface.Trainer``)."""

    def __init__(
        self,
        *,
        plan: TrainingPlan | None = None,
        device: str = "cpu",
        jit_compile: bool | None = None,
        eval_batch_size: int = 512,
        fallback_reason: str | None = None,
    ) -> None:
        self.plan = plan if plan is not None else TrainingPlan()
        # Why these replicas are trained alone (the workload cannot be packed), for their records.
        self.training = RunTraining(mode="single", fallback_reason=fallback_reason)
        self.device = device
        self._tf_device = _tf_device(device)
        # XLA halves the step time of the small LSTMs but compiling costs ~2 s per
        # shape; worth it on a GPU worker, not for short CPU runs and tests.
        self.jit_compile = device.startswith("gpu") if jit_compile is None else jit_compile
        self.eval_batch_size = eval_batch_size
        self._compiled: OrderedDict[Hashable, CompiledReplica] = OrderedDict()
        self._data: OrderedDict[int, tuple[Any, TrainingData]] = OrderedDict()

    # ----------------------------------------------------------------- public

    def train(
        self,
        workload: Any,
        replicas: Sequence[ReplicaSpec],
        epochs: int,
        observer: TrainingObserver,
    ) -> list[ReplicaResult]:
        results: list[ReplicaResult] = []
        stopped = False
        for replica in replicas:
            if stopped or observer.should_stop():
                stopped = True
                results.append(ReplicaResult(key=replica.key, status=RunStatus.CANCELLED))
                continue
            result = self._train_replica_safely(workload, replica, epochs, observer)
            stopped = result.status == RunStatus.CANCELLED
            results.append(result)
        for r in results:
            r.training = self.training
        return results

    # ---------------------------------------------------------------- private

    def _train_replica_safely(
        self, workload: Any, replica: ReplicaSpec, epochs: int, observer: TrainingObserver
    ) -> ReplicaResult:
        result = ReplicaResult(key=replica.key, status=RunStatus.COMPLETED)
        try:
            if self._tf_device is None:
                self._train_replica(workload, replica, epochs, observer, result)
            else:
                with tf.device(self._tf_device):
                    self._train_replica(workload, replica, epochs, observer, result)
        except _Cancelled:
            result.status = RunStatus.CANCELLED
        except Exception as exc:
            logger.exception("replica %r failed", replica.key)
            result.status = RunStatus.ERROR
            result.error = f"{type(exc).__name__}: {exc}"
            result.traceback = traceback.format_exc()
            # A half-run step may have left the cached objects in any state.
            self._compiled.clear()
        return result

    def _dataset(self, workload: Any) -> TrainingData:
        key = id(workload)
        hit = self._data.get(key)
        if hit is not None and hit[0] is workload:
            self._data.move_to_end(key)
            return hit[1]
        data = load_training_data(workload)
        self._data[key] = (workload, data)
        while len(self._data) > 2:
            self._data.popitem(last=False)
        return data

    def _cache_key(self, workload: Any, params: Mapping[str, Any], batch_size: int, epochs: int) -> Hashable:
        resolved = resolve_optimizer_params(params)
        if resolved["schedule"] in ("constant", "reduce_on_plateau"):
            # The lr lives in a variable assigned per replica: not part of the trace.
            resolved.pop("learning_rate")
        if resolved["schedule"] == "cosine":
            resolved["epochs"] = epochs
        return (id(workload), batch_size, tuple(sorted(resolved.items())))

    def _compiled_for(
        self,
        workload: Any,
        data: TrainingData,
        params: Mapping[str, Any],
        batch_size: int,
        epochs: int,
        fresh_model: Any,
        steps: int,
    ) -> CompiledReplica:
        key = self._cache_key(workload, params, batch_size, epochs)
        entry = self._compiled.get(key)
        if entry is not None and entry.workload is workload and same_structure(entry.model, fresh_model):
            self._compiled.move_to_end(key)
            for dst, src in zip(entry.model.variables, fresh_model.variables, strict=True):
                dst.assign(src)
            lr_var = entry.optimizer._learning_rate
            for v in entry.optimizer.variables:
                if v is not lr_var:
                    v.assign(tf.zeros(v.shape, dtype=v.dtype))
            if isinstance(lr_var, keras.Variable):
                lr_var.assign(resolve_optimizer_params(params)["learning_rate"])
            return entry
        optimizer = build_optimizer(
            params, steps_per_epoch=steps, schedule_options=self.plan.schedule_options, epochs=epochs
        )
        optimizer.build(fresh_model.trainable_variables)
        loss_fn = per_sample_loss(workload.loss)
        entry = CompiledReplica(
            workload=workload,
            model=fresh_model,
            optimizer=optimizer,
            train_step=make_train_step(fresh_model, optimizer, loss_fn, data, self.jit_compile),
            eval_step=make_eval_step(fresh_model, loss_fn, data, str(workload.loss), self.jit_compile),
        )
        self._compiled[key] = entry
        while len(self._compiled) > _CACHE_SIZE:
            self._compiled.popitem(last=False)
        return entry

    def _evaluate(
        self, entry: CompiledReplica, x: tf.Tensor, y: tf.Tensor, kind: LabelKind
    ) -> tuple[float, float | None]:
        n = int(x.shape[0])
        loss_sum = 0.0
        correct = 0.0
        for start in range(0, n, self.eval_batch_size):
            ls, c = entry.eval_step(
                x[start : start + self.eval_batch_size], y[start : start + self.eval_batch_size]
            )
            loss_sum += float(ls)
            correct += float(c)
        return loss_sum / n, (None if kind == "regression" else correct / n)

    def _record(self, entry: CompiledReplica, data: TrainingData, epoch: int, **fields: Any) -> EpochRecord:
        loss, acc = self._evaluate(entry, data.x, data.y, data.kind)
        val_loss = val_acc = None
        if data.x_val is not None and data.y_val is not None:
            val_loss, val_acc = self._evaluate(entry, data.x_val, data.y_val, data.kind)
        return EpochRecord(
            epoch=epoch, loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc, **fields
        )

    def _sharpness_for(
        self, entry: CompiledReplica, data: TrainingData, params: Mapping[str, Any], replica: ReplicaSpec
    ) -> LoneSharpness | None:
        """The replica's sharpness estimator when the sweep records sharpness (docs/sharpness.md)."""
        options = self.plan.sharpness
        if options is None:
            return None
        x_spec = tf.TensorSpec([None, *data.x.shape[1:]], data.x.dtype)
        y_spec = tf.TensorSpec([None, *data.y.shape[1:]], data.y.dtype)
        loss_fn = per_sample_loss(entry.workload.loss)
        if options.products == "exact":
            if entry.hvp is None:
                entry.hvp = make_hvp(entry.model, loss_fn, x_spec, y_spec)
            fn = entry.hvp
        else:
            if entry.gradient is None:
                entry.gradient = make_gradient(entry.model, loss_fn, x_spec, y_spec)
            fn = entry.gradient
        return LoneSharpness(
            options=options,
            product_fn=fn,
            model=entry.model,
            optimizer=entry.optimizer,
            resolved=resolve_optimizer_params(params),
            x=data.x,
            y=data.y,
            data_seed=replica.data_seed,
            chunk=self.eval_batch_size,
        )

    def _train_replica(
        self,
        workload: Any,
        replica: ReplicaSpec,
        epochs: int,
        observer: TrainingObserver,
        result: ReplicaResult,
    ) -> None:
        params = {**dict(workload.default_params), **dict(replica.params)}
        data = self._dataset(workload)
        order = BatchOrder(
            data.n,
            int(params.get("batch_size", 32)),
            replica.data_seed,
            shuffle=bool(params.get("shuffle", True)),
        )
        steps = order.steps_per_epoch
        fresh = build_initial_model(workload, replica.init_seed, data.x.numpy()[:1])
        entry = self._compiled_for(workload, data, params, order.batch_size, epochs, fresh, steps)
        optimizer = entry.optimizer
        plateau = (
            PlateauController.from_options(self.plan.schedule_options)
            if params.get("schedule") == "reduce_on_plateau"
            else None
        )
        monitor = self.plan.schedule_options.plateau_monitor
        stride = max(1, math.ceil(epochs * steps / MAX_STEP_POINTS))

        sharpness = self._sharpness_for(entry, data, params, replica)

        def emit(record: EpochRecord) -> None:
            if sharpness is not None and math.isfinite(record.loss):
                record = with_estimate(record, sharpness.estimate(record.epoch, record.learning_rate))
            result.epochs.append(record)
            observer.on_epoch([(replica.key, record)])

        record = self._record(
            entry, data, 0, running_loss=None, learning_rate=lr_at(optimizer, 0), grad_norm=None
        )
        emit(record)
        if not math.isfinite(record.loss):
            result.status = RunStatus.NONFINITE
            return
        global_step = 0
        for epoch in range(1, epochs + 1):
            if observer.should_stop():
                raise _Cancelled
            losses: list[float] = []
            norms: list[float] = []
            bad: float | None = None
            for idx in order.next_epoch():
                loss_t, norm_t = entry.train_step(data.x, data.y, tf.constant(idx, dtype=tf.int32))
                loss_v = float(loss_t)
                losses.append(loss_v)
                norms.append(float(norm_t))
                if self.plan.record_steps and (global_step % stride == 0 or not math.isfinite(loss_v)):
                    result.step_losses.append((global_step, loss_v))
                global_step += 1
                if not math.isfinite(loss_v):
                    bad = loss_v
                    break
            lr = lr_at(optimizer, global_step - 1)
            running = float(np.mean(losses))
            grad_norm = float(np.mean(norms))
            if bad is not None:
                record = EpochRecord(
                    epoch=epoch,
                    loss=bad,
                    accuracy=None,
                    running_loss=running,
                    val_loss=None,
                    val_accuracy=None,
                    learning_rate=lr,
                    grad_norm=grad_norm,
                )
            else:
                record = self._record(
                    entry, data, epoch, running_loss=running, learning_rate=lr, grad_norm=grad_norm
                )
            emit(record)
            if not math.isfinite(record.loss):
                result.status = RunStatus.NONFINITE
                return
            if plateau is not None:
                metric = (
                    record.val_loss if monitor == "val_loss" and record.val_loss is not None else record.loss
                )
                new_lr = plateau.update(metric, lr)
                if new_lr != lr:
                    set_learning_rate(optimizer, new_lr)
        result.status = RunStatus.COMPLETED
