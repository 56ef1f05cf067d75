"""Data that crosses the boundary between the worker loop and the trainers.

Training is a pure function from replicas (configuration x seed) to curves:
no database, no HTTP. The worker loop owns persistence and talks to trainers
only through these types and the ``TrainingObserver`` protocol.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.core.records import CurvePoint, RunTraining
from service.core.states import RunStatus

# How a replica ended: a run status other than RUNNING (the trainer reports only ended replicas).
ReplicaStatus = RunStatus


@dataclass(frozen=True)
class ReplicaSpec:
    """One seed of one configuration.

    ``params`` holds the configuration's hyperparameters with the names of the
    sweep spec (learning_rate, batch_size, optimizer, beta_1, beta_2, epsilon,
    rho, momentum, nesterov, clipnorm, schedule, shuffle, ...). Parameters the
    spec did not sweep are absent and take the workload's/optimizer's default.
    ``init_seed`` seeds the initial weights (and dropout); ``data_seed`` seeds
    the order of mini-batches. They are drawn independently (``service.core.spec.seed_pairs``).
    """

    key: Hashable
    params: Mapping[str, Any]
    init_seed: int
    data_seed: int


@dataclass(frozen=True)
class EpochRecord(CurvePoint):
    """A curve point as a trainer reports it: the loss and learning rate are always measured."""

    loss: float
    learning_rate: float


@dataclass
class ReplicaResult:
    key: Hashable
    status: ReplicaStatus
    epochs: list[EpochRecord] = field(default_factory=list)
    # Downsampled mini-batch losses as (global step, loss), when recorded.
    step_losses: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    # How the replica was trained (pack size, compaction, compiled function, or why alone).
    training: RunTraining | None = None


class TrainingObserver(Protocol):
    """What a trainer reports to while it runs (implemented by the worker loop)."""

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        """Called once per epoch with the records of every replica still training."""

    def should_stop(self) -> bool:
        """True when the sweep was cancelled or the worker is shutting down."""


class NullObserver:
    """Observer for callers that only want the returned results."""

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        return None

    def should_stop(self) -> bool:
        return False


class Trainer(Protocol):
    def train(
        self,
        workload: Any,
        replicas: Sequence[ReplicaSpec],
        epochs: int,
        observer: TrainingObserver,
    ) -> list[ReplicaResult]:
        """Train every replica for up to ``epochs`` epochs; one result per replica, same order."""
