"""A workload, a resolver and a trainer that train nothing, for unit tests of the worker loop.

Nothing here loads TensorFlow: the trainer reports made-up epochs the way the
pack trainer (workers/training/packs.py) reports real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.records import RunTraining
from tests.workers.fake_clock import FakeClock
from workers.training.interface import EpochRecord, ReplicaResult, ReplicaSpec, TrainingObserver
from workers.workloads.base import Dataset, Workload


@dataclass
class FakeWorkload:
    """A regression workload (no classes, so no label prior is computed) with no model."""

    name: str = "fake"
    loss: str = "mse"
    num_classes: int = 0
    default_params: dict[str, Any] = field(default_factory=dict)

    def dataset(self) -> Dataset:
        return Dataset(x_train=np.zeros((4, 1)), y_train=np.zeros((4, 1)))

    def build_model(self) -> Any:
        raise NotImplementedError("the fake trainer builds no model")


@dataclass
class FakeResolver:
    """Resolves every workload block to one FakeWorkload, or raises ``error`` if set."""

    workload: FakeWorkload = field(default_factory=FakeWorkload)
    error: Exception | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def resolve(self, block: dict[str, Any]) -> Workload:
        self.blocks.append(block)
        if self.error is not None:
            raise self.error
        return self.workload  # type: ignore[return-value]


@dataclass
class FakeTrainer:
    """Trains nothing, the way the pack trainer does it.

    Epoch 0 is reported at once; before each later epoch it asks
    ``should_stop`` (and cancels what is left if so), moves the clock by
    ``epoch_s`` as if it had computed, then reports every replica's record.
    ``after_epoch(epoch)`` runs after each report, for tests to act mid-training.
    """

    clock: FakeClock
    epoch_s: float = 0.25
    error: Exception | None = None
    after_epoch: Callable[[int], None] | None = None
    training: RunTraining | None = None  # how it says each replica was trained
    packs: list[list[ReplicaSpec]] = field(default_factory=list)  # what each train() call got
    results: list[list[ReplicaResult]] = field(default_factory=list)  # what each one returned

    def train(
        self, workload: Any, replicas: Sequence[ReplicaSpec], epochs: int, observer: TrainingObserver
    ) -> list[ReplicaResult]:
        self.packs.append(list(replicas))
        if self.error is not None:
            raise self.error
        results = [ReplicaResult(key=r.key, status="completed", training=self.training) for r in replicas]
        self.results.append(results)
        for epoch in range(epochs + 1):
            if epoch > 0:
                if observer.should_stop():
                    for r in results:
                        r.status = "cancelled"
                    break
                self.clock.advance(self.epoch_s)
            records: list[tuple[Hashable, EpochRecord]] = []
            for r in results:
                rec = _record(epoch)
                r.epochs.append(rec)
                records.append((r.key, rec))
            observer.on_epoch(records)
            if self.after_epoch is not None:
                self.after_epoch(epoch)
        return results


def _record(epoch: int) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        loss=1.0 / (epoch + 1),
        accuracy=None,
        running_loss=None,
        val_loss=None,
        val_accuracy=None,
        learning_rate=0.01,
        grad_norm=None,
    )
