"""One replica of a pack on the host side: its schedule, its batch order and its records.

Semantics are the single trainer's (``workers.training.single``): effective
params ``{**workload.default_params, **replica.params}``, the batch order of
``data_order``, the learning rate of ``optimizers`` (a schedule is evaluated
with the very same Keras schedule object, once per run, into a per-step
table), reduce-on-plateau decided between epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from service.core.records import PackResize
from service.core.states import RunStatus
from workers.training.data_order import BatchOrder
from workers.training.interface import EpochRecord, ReplicaResult, ReplicaSpec, ReplicaStatus
from workers.training.optimizers import PlateauController, build_learning_rate, resolve_optimizer_params
from workers.training.packs.evaluation import EvalResult
from workers.training.training_plan import TrainingPlan


@dataclass
class EpochTotals:
    """An epoch call's per-replica results on the host (``epoch_function.EpochResult``)."""

    active: np.ndarray
    bad_loss: np.ndarray
    sum_loss: np.ndarray
    sum_grad_norm: np.ndarray
    count: np.ndarray
    step_losses: np.ndarray | None  # [steps, K], when the plan records steps


@dataclass
class PackReplica:
    spec: ReplicaSpec
    params: dict[str, Any]
    resolved: dict[str, Any]  # optimizers.resolve_optimizer_params(params)
    order: BatchOrder
    lr_table: np.ndarray  # [epochs * steps] float32, the lr each update uses
    plateau: PlateauController | None
    plateau_lr: float
    result: ReplicaResult
    training: bool = True
    resizes: list[PackResize] = field(default_factory=list)  # compactions it went through

    @classmethod
    def prepare(
        cls, spec: ReplicaSpec, workload: Any, n: int, plan: TrainingPlan, epochs: int
    ) -> PackReplica:
        params = {**dict(workload.default_params), **dict(spec.params)}
        resolved = resolve_optimizer_params(params)
        order = BatchOrder(
            n,
            int(params.get("batch_size", 32)),
            spec.data_seed,
            shuffle=bool(params.get("shuffle", True)),
        )
        lr = build_learning_rate(
            params,
            steps_per_epoch=order.steps_per_epoch,
            schedule_options=plan.schedule_options,
            epochs=epochs,
        )
        total_steps = max(1, epochs * order.steps_per_epoch)
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            table = np.asarray(keras.ops.convert_to_numpy(lr(np.arange(total_steps))), np.float32)
        else:
            table = np.full(total_steps, float(lr), np.float32)
        plateau = (
            PlateauController.from_options(plan.schedule_options)
            if resolved["schedule"] == "reduce_on_plateau"
            else None
        )
        return cls(
            spec,
            params,
            resolved,
            order,
            table,
            plateau,
            float(table[0]),
            ReplicaResult(key=spec.key, status=RunStatus.COMPLETED),
        )

    def stop(self, status: ReplicaStatus) -> None:
        self.result.status, self.training = status, False

    def learning_rates(self, first_step: int, steps: int) -> np.ndarray:
        """The lr of each update of the epoch that starts at global step ``first_step``."""
        if self.plateau is not None:
            return np.full(steps, self.plateau_lr, np.float32)
        return self.lr_table[first_step : first_step + steps]

    def initial_record(self, ev: EvalResult, i: int) -> EpochRecord:
        """Epoch 0: the evaluation at initialisation (replica ``i`` of the pack)."""
        return EpochRecord(
            0, ev.loss[i], ev.acc(i), None, ev.val_loss_at(i), ev.val_acc(i), float(self.lr_table[0]), None
        )

    def keep_step_losses(self, losses: np.ndarray, first_step: int, stride: int) -> None:
        """Every ``stride``-th mini-batch loss of the epoch, and the first non-finite one."""
        for s in range(len(losses)):
            g = first_step + s
            if g % stride == 0 or not math.isfinite(float(losses[s])):
                self.result.step_losses.append((g, float(losses[s])))
            if not math.isfinite(float(losses[s])):
                break

    def epoch_record(
        self, epoch: int, i: int, totals: EpochTotals, ev: EvalResult, lr_used: float
    ) -> EpochRecord:
        """Epoch ``epoch`` >= 1 of replica ``i``; a non-finite mini-batch loss is the record's loss."""
        cnt = max(1.0, float(totals.count[i]))
        running = float(totals.sum_loss[i]) / cnt
        gn = float(totals.sum_grad_norm[i]) / cnt
        if not totals.active[i]:
            return EpochRecord(epoch, float(totals.bad_loss[i]), None, running, None, None, lr_used, gn)
        return EpochRecord(
            epoch, ev.loss[i], ev.acc(i), running, ev.val_loss_at(i), ev.val_acc(i), lr_used, gn
        )

    def follow_plateau(self, record: EpochRecord, monitor: str) -> None:
        """Reduce-on-plateau: the lr of the next epoch from this epoch's monitored loss."""
        if self.plateau is None:
            return
        metric = record.val_loss if monitor == "val_loss" and record.val_loss is not None else record.loss
        self.plateau_lr = self.plateau.update(metric, self.plateau_lr)
