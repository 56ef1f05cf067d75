"""What the worker loop needs from storage, as a Protocol, and its database implementation.

The loop (workers/loop.py) talks only to a ``WorkerStore``. ``DatabaseStore``
is the real one: a thin adapter with one delegation per operation onto the
service's work queue (service.core.work), repositories, refinement and reports, so that the loop's
decisions can be unit-tested against an in-memory fake
(tests/workers/fake_store.py) without a database or a worker process.

The ownership rule every implementation keeps: a worker owns a configuration
while the configuration is running under the trial id it claimed. Heartbeats,
curve writes and finishing report which configurations the caller still owns
(a reaper may have re-enqueued one under a new trial) and which of those
belong to a cancelled sweep; writes for configurations it no longer owns are
dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from service.core.db import Database
from service.core.proposals.refinement import maybe_refine
from service.core.records import Claim, RunOutcome
from service.core.repo import workers as workers_repo
from service.core.results.reports import store_report
from service.core.states import SweepState, WorkerState
from service.core.work import claims, finishing, ownership, reaping
from service.core.work.ownership import GuardResult
from workers.training.interface import EpochRecord

__all__ = ["Claim", "ConfigResult", "DatabaseStore", "GuardResult", "RunEpoch", "RunOutcome", "WorkerStore"]


@dataclass(frozen=True)
class RunEpoch:
    """A trainer's record of one epoch, with the run and configuration it belongs to."""

    run_id: int
    config_id: int
    record: EpochRecord


@dataclass(frozen=True)
class ConfigResult:
    """What training a configuration produced: its runs' outcomes and Optuna's value."""

    config_id: int
    trial_id: int
    outcomes: Sequence[RunOutcome]
    value: float | None  # median over seeds of the final loss
    intermediate: Sequence[tuple[int, float]]  # (epoch, median loss)
    train_seconds: float


class WorkerStore(Protocol):
    # ------------------------------------------------------------ the worker's own row

    def register(self, *, worker_id: str, hostname: str, pid: int, device: str) -> None:
        """Announce the worker (idle), or reset its row if the id was seen before."""

    def set_state(
        self,
        *,
        worker_id: str,
        state: WorkerState,
        add_train_seconds: float = 0.0,
        add_busy_seconds: float = 0.0,
    ) -> None:
        """Record the worker's state (``stopped`` when it exits) and add to its time counters."""

    def live_workers(self, *, grace_s: float) -> int:
        """How many workers heartbeated within ``grace_s`` (the claim's fair share divides by it)."""

    # ------------------------------------------------------------ work

    def reap_stale(self, *, grace_s: float, max_retries: int) -> int:
        """Fail and re-enqueue configurations whose heartbeat is older than ``grace_s``."""

    def claim(self, *, worker_id: str, max_replicas: int, live_workers: int) -> list[Claim]:
        """Take waiting configurations of one sweep to train as one pack (empty when none)."""

    def heartbeat(self, *, worker_id: str, owned: Mapping[int, int]) -> GuardResult:
        """Keep ``owned`` ({config_id: trial_id}) alive; says which are still owned or cancelled."""

    def record_epochs(self, *, owned: Mapping[int, int], points: Sequence[RunEpoch]) -> GuardResult:
        """Store curve points of the configurations still owned, in one write; like ``heartbeat``."""

    def finish_config(self, *, worker_id: str, result: ConfigResult) -> bool:
        """Store the runs' outcomes and finish the configuration; False if it is no longer owned."""

    def release(self, *, owned: Mapping[int, int]) -> None:
        """Give configurations back untrained (shutdown): waiting again under a new trial."""

    # ------------------------------------------------------------ after a pack

    def maybe_refine(self, *, sweep_id: int) -> bool:
        """Enqueue the sweep's next edge-refinement round if its work is done; True if it did."""

    def maybe_finish_sweep(self, *, sweep_id: int) -> SweepState | None:
        """Mark the sweep completed or failed when nothing is left; the new state, else None."""

    def store_report(self, *, sweep_id: int) -> None:
        """Compute and keep a finished sweep's report so readers need not recompute it."""


class DatabaseStore:
    """The real store: each operation delegates to the service's own function for it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, *, worker_id: str, hostname: str, pid: int, device: str) -> None:
        with self.db.transaction() as s:
            workers_repo.register(s, worker_id=worker_id, hostname=hostname, pid=pid, device=device)

    def set_state(
        self,
        *,
        worker_id: str,
        state: WorkerState,
        add_train_seconds: float = 0.0,
        add_busy_seconds: float = 0.0,
    ) -> None:
        with self.db.transaction() as s:
            workers_repo.set_state(
                s,
                worker_id=worker_id,
                state=state,
                add_train_seconds=add_train_seconds,
                add_busy_seconds=add_busy_seconds,
            )

    def live_workers(self, *, grace_s: float) -> int:
        with self.db.transaction() as s:
            return len(workers_repo.list_workers(s, grace_s=grace_s))

    def reap_stale(self, *, grace_s: float, max_retries: int) -> int:
        return reaping.reap_stale(self.db, grace_s=grace_s, max_retries=max_retries)

    def claim(self, *, worker_id: str, max_replicas: int, live_workers: int) -> list[Claim]:
        return claims.claim(self.db, worker_id, max_replicas=max_replicas, live_workers=live_workers)

    def heartbeat(self, *, worker_id: str, owned: Mapping[int, int]) -> GuardResult:
        return ownership.heartbeat(self.db, worker_id, owned)

    def record_epochs(self, *, owned: Mapping[int, int], points: Sequence[RunEpoch]) -> GuardResult:
        return ownership.record_epoch(self.db, owned, [(p.run_id, p.record) for p in points])

    def finish_config(self, *, worker_id: str, result: ConfigResult) -> bool:
        return finishing.finish_config(
            self.db,
            config_id=result.config_id,
            trial_id=result.trial_id,
            outcomes=result.outcomes,
            value=result.value,
            intermediate=result.intermediate,
            worker_id=worker_id,
            train_seconds=result.train_seconds,
        )

    def release(self, *, owned: Mapping[int, int]) -> None:
        finishing.release(self.db, owned)

    def maybe_refine(self, *, sweep_id: int) -> bool:
        return maybe_refine(self.db, sweep_id)

    def maybe_finish_sweep(self, *, sweep_id: int) -> SweepState | None:
        return finishing.maybe_finish_sweep(self.db, sweep_id)

    def store_report(self, *, sweep_id: int) -> None:
        with self.db.transaction() as s:
            store_report(s, sweep_id=sweep_id)
