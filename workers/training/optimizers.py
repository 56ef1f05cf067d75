"""Spec parameters -> real Keras optimizers and learning-rate schedules.

This module is the single definition of what a configuration's optimizer
parameters mean; the single trainer uses it directly and the pack trainer
must reproduce the same numbers. Semantics, precisely:

Parameters (names of ``service.core.spec``), merged by the trainer as
``{**workload.default_params, **replica.params}``; anything still missing takes
the **Keras default** of the chosen optimizer (Keras 3.x):

========  ==============================================================
adam      learning_rate 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7
adamw     as adam, plus weight_decay 0.004 (decoupled, Loshchilov & Hutter)
rmsprop   learning_rate 1e-3, rho 0.9, momentum 0.0, epsilon 1e-7, centered False
sgd       learning_rate 0.01, momentum 0.0, nesterov False
========  ==============================================================

Parameters that do not apply to the optimizer (``service.core.spec_space.APPLIES_TO``,
e.g. ``rho`` for adam) are ignored. ``optimizer`` defaults to ``adam``.

``clipnorm`` is Keras' ``clipnorm``: **each variable's gradient is clipped to
that L2 norm separately** (not the global norm). ``0`` or absent means no
clipping.

Schedules (``params["schedule"]``, default ``constant``). ``step`` is the
optimizer's iteration count *before* the update, i.e. the first update uses
``step = 0``; ``lr`` is ``params["learning_rate"]`` (or the Keras default);
options come from the sweep's ``schedule_options`` (``ScheduleOptions``
defaults when missing):

- ``constant``: ``lr``.
- ``cosine``: ``keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs *
  steps_per_epoch, alpha=0)``, i.e. ``lr * 0.5 * (1 + cos(pi * min(step, D) / D))``
  over the whole run.
- ``exponential``: ``ExponentialDecay(lr, decay_steps, decay_rate,
  staircase=False)``: ``lr * decay_rate ** (step / decay_steps)``.
- ``inverse_time``: old Keras ``decay``: ``InverseTimeDecay(lr, decay_steps=1,
  decay_rate=decay)``: ``lr / (1 + decay * step)``.
- ``cyclic``: triangular cyclical lr (Smith 2017, "Cyclical Learning Rates for
  Training Neural Networks"), ``TriangularCyclicLR``: with ``s =
  cyclic_step_size`` (half cycle, steps), ``cycle = floor(1 + step / (2 s))``,
  ``x = |step / s - 2 cycle + 1|``, ``lr(step) = min_lr + (max_lr - min_lr) *
  max(0, 1 - x)``. It starts at ``cyclic_min_lr`` and peaks at ``cyclic_max_lr``
  after ``s`` steps. **The configuration's learning_rate is not used** (the
  bounds are the schedule's, as in the CLR callback of report 3).
- ``warmup``: ``LinearWarmup``: ``lr * min(1, (step + 1) / W)`` with ``W =
  warmup_epochs * steps_per_epoch``; the first update already uses ``lr / W``
  (not 0), the ``W``-th and later use ``lr``.
- ``reduce_on_plateau``: constant ``lr`` inside an epoch; between epochs the
  trainer feeds the monitored metric to ``PlateauController`` and sets the
  optimizer's learning rate to what it returns (Keras ``ReduceLROnPlateau``
  with ``mode="min", min_delta=1e-4, cooldown=0``).

``lr_at(optimizer, step)`` gives the lr an update at ``step`` uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras

from service.core.compile_settings import KERAS_DEFAULTS, resolve_optimizer_params
from service.core.spec import ScheduleOptions

__all__ = ["KERAS_DEFAULTS", "resolve_optimizer_params"]  # defined with the compile settings, used here

# Epoch-level schedules are applied by the trainer, not by the optimizer.
EPOCH_LEVEL_SCHEDULES = ("reduce_on_plateau",)


@keras.saving.register_keras_serializable(package="stability_sweeps")
class TriangularCyclicLR(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """Smith (2017) triangular cyclical learning rate; formula in the module docstring."""

    def __init__(self, min_lr: float, max_lr: float, step_size: int) -> None:
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.step_size = int(step_size)

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        s = float(self.step_size)
        cycle = ops.floor(1.0 + step / (2.0 * s))
        x = ops.abs(step / s - 2.0 * cycle + 1.0)
        return self.min_lr + (self.max_lr - self.min_lr) * ops.maximum(0.0, 1.0 - x)

    def get_config(self) -> dict[str, Any]:
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "step_size": self.step_size}


@keras.saving.register_keras_serializable(package="stability_sweeps")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """``lr * min(1, (step + 1) / warmup_steps)``: linear warmup, then constant."""

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        frac = (ops.cast(step, "float32") + 1.0) / float(self.warmup_steps)
        return self.learning_rate * ops.minimum(1.0, frac)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def build_learning_rate(
    params: Mapping[str, Any],
    *,
    steps_per_epoch: int,
    schedule_options: ScheduleOptions | None = None,
    epochs: int | None = None,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The ``learning_rate`` argument for the optimizer: a float or a schedule.

    ``epochs`` (the run's length) is required for ``cosine`` only.
    """
    resolved = resolve_optimizer_params(params)
    lr = float(resolved["learning_rate"])
    schedule = resolved["schedule"]
    opts = schedule_options if schedule_options is not None else ScheduleOptions()
    sched = keras.optimizers.schedules
    if schedule in ("constant", "reduce_on_plateau"):
        return lr
    if schedule == "cosine":
        if epochs is None:
            raise ValueError("the cosine schedule needs the run length: pass epochs=")
        return sched.CosineDecay(lr, decay_steps=max(1, epochs * steps_per_epoch), alpha=0.0)
    if schedule == "exponential":
        return sched.ExponentialDecay(lr, opts.decay_steps, opts.decay_rate, staircase=False)
    if schedule == "inverse_time":
        return sched.InverseTimeDecay(lr, decay_steps=1, decay_rate=opts.decay, staircase=False)
    if schedule == "cyclic":
        return TriangularCyclicLR(opts.cyclic_min_lr, opts.cyclic_max_lr, opts.cyclic_step_size)
    if schedule == "warmup":
        return LinearWarmup(lr, max(1, opts.warmup_epochs * steps_per_epoch))
    raise AssertionError(f"unhandled schedule {schedule}")  # resolve_optimizer_params checked it


def build_optimizer(
    params: Mapping[str, Any],
    *,
    steps_per_epoch: int,
    schedule_options: ScheduleOptions | None = None,
    epochs: int | None = None,
) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer for one replica (semantics in the module docstring)."""
    p = resolve_optimizer_params(params)
    lr = build_learning_rate(
        params, steps_per_epoch=steps_per_epoch, schedule_options=schedule_options, epochs=epochs
    )
    common: dict[str, Any] = {"learning_rate": lr, "clipnorm": p["clipnorm"]}
    name = p["optimizer"]
    if name == "adam":
        return keras.optimizers.Adam(beta_1=p["beta_1"], beta_2=p["beta_2"], epsilon=p["epsilon"], **common)
    if name == "adamw":
        return keras.optimizers.AdamW(
            beta_1=p["beta_1"],
            beta_2=p["beta_2"],
            epsilon=p["epsilon"],
            weight_decay=p["weight_decay"],
            **common,
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rho=p["rho"], momentum=p["momentum"], epsilon=p["epsilon"], **common)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=p["momentum"], nesterov=p["nesterov"], **common)
    raise AssertionError(f"unhandled optimizer {name}")


def lr_at(optimizer: keras.optimizers.Optimizer, step: int) -> float:
    """The learning rate an update at ``step`` (0-based) uses.

    For a schedule this evaluates it at ``step``; for a constant (or plateau)
    learning rate it is the optimizer's current value.
    """
    lr = optimizer._learning_rate  # Keras keeps the schedule object here
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(lr(step)))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def set_learning_rate(optimizer: keras.optimizers.Optimizer, value: float) -> None:
    """Set a constant learning rate (used between epochs by reduce_on_plateau)."""
    optimizer.learning_rate = float(value)


@dataclass
class PlateauController:
    """Keras ``ReduceLROnPlateau`` logic as a pure, framework-free state machine.

    Call ``update(metric, lr)`` once per epoch (after the epoch's evaluation)
    with the monitored metric; it returns the learning rate for the next
    epoch. Rule (``mode="min"``): if ``metric < best - min_delta`` the best is
    updated and the wait counter reset; otherwise (outside cooldown) ``wait``
    grows, and when ``wait >= patience`` and ``lr > min_lr`` the lr becomes
    ``max(lr * factor, min_lr)``, ``wait`` resets and cooldown starts. A
    non-finite metric counts as no improvement. The trainer monitors
    ``val_loss`` (falling back to the full-training-set loss when there is no
    validation data) or ``loss``, which is the **full-training-set loss at
    epoch end**, not Keras' running mean.
    """

    factor: float = 0.2
    patience: int = 5
    min_lr: float = 1e-5
    min_delta: float = 1e-4
    cooldown: int = 0
    best: float = field(default=math.inf)
    wait: int = 0
    cooldown_counter: int = 0

    @classmethod
    def from_options(cls, schedule_options: ScheduleOptions | None) -> PlateauController:
        opts = schedule_options if schedule_options is not None else ScheduleOptions()
        return cls(factor=opts.plateau_factor, patience=opts.plateau_patience, min_lr=opts.plateau_min_lr)

    def update(self, metric: float, lr: float) -> float:
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if math.isfinite(metric) and metric < self.best - self.min_delta:
            self.best = metric
            self.wait = 0
            return lr
        if self.cooldown_counter > 0:
            return lr
        self.wait += 1
        if self.wait >= self.patience and lr > self.min_lr:
            self.wait = 0
            self.cooldown_counter = self.cooldown
            return max(lr * self.factor, self.min_lr)
        return lr
