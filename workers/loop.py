"""The worker loop: claim, heartbeat, train, record, finish. Nothing else.

What to train comes from a WorkerStore (workers/store.py: the database in a
real worker, an in-memory fake in unit tests); how to train is a Trainer
(workers.training); what the model and data are is a Workload. The loop
survives a failing workload or trainer: the error is stored on the runs with
its traceback and the loop goes on. Its timing (flushes, heartbeats, reaping,
idling) reads an injectable Clock (workers/clock.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.core.analysis.classify import label_prior
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import DatabaseUnavailable
from service.core.states import RunStatus, SweepState, WorkerState
from workers import outcomes
from workers.clock import Clock, SystemClock
from workers.resolve import WorkloadResolver
from workers.store import Claim, ConfigResult, DatabaseStore, GuardResult, RunEpoch, WorkerStore
from workers.training.choose_trainer import TrainerChooser
from workers.training.interface import EpochRecord, ReplicaResult, ReplicaSpec, Trainer
from workers.training.training_plan import TrainingPlan
from workers.workloads.base import Workload

log = logging.getLogger(__name__)

# Curves are written in bulk: at most one transaction per this many seconds
# per pack (Optuna/SQL round trips would otherwise eat the packed throughput).
FLUSH_INTERVAL_S = 1.0


@dataclass
class WorkerStats:
    train_seconds: float = 0.0  # inside trainer.train, minus time in our callbacks
    busy_seconds: float = 0.0  # from claim to finish, everything included
    trials_done: int = 0
    write_seconds: float = 0.0

    @property
    def overhead_share(self) -> float:
        return 0.0 if self.busy_seconds == 0 else 1.0 - self.train_seconds / self.busy_seconds


class WorkloadSource(Protocol):
    def resolve(self, block: dict[str, Any]) -> Workload:
        """The Workload that a sweep spec's ``workload`` block names."""


# Builds the trainer for a pack from its workload and its first claim.
TrainerFactory = Callable[[Workload, Claim], Trainer]


class _PackObserver:
    """Collects per-epoch records of a pack and writes them in bulk; tracks ownership."""

    def __init__(
        self,
        *,
        store: WorkerStore,
        clock: Clock,
        worker_id: str,
        stopping: threading.Event,
        claims: Sequence[Claim],
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._stopping = stopping
        self.owned: dict[int, int] = {c.config_id: c.trial_id for c in claims}
        self._config_of_run = {run.run_id: c.config_id for c in claims for run in c.runs}
        self._buffer: list[RunEpoch] = []
        self._last_flush = clock.monotonic()
        self.lost: set[int] = set()
        self.cancelled: set[int] = set()
        self.callback_seconds = 0.0
        self._lock = threading.Lock()

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        t0 = time.perf_counter()
        for key, r in records:
            run_id = int(key)  # type: ignore[call-overload]
            self._buffer.append(RunEpoch(run_id=run_id, config_id=self._config_of_run[run_id], record=r))
        if self._clock.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()
        self.callback_seconds += time.perf_counter() - t0

    def flush(self) -> None:
        if not self._buffer:
            return
        points, self._buffer = self._buffer, []
        guard = self._store.record_epochs(owned=self._still_owned(), points=points)
        self._apply(guard)
        self._last_flush = self._clock.monotonic()

    def _still_owned(self) -> dict[int, int]:
        with self._lock:
            return {c: t for c, t in self.owned.items() if c not in self.lost}

    def _apply(self, guard: GuardResult) -> None:
        with self._lock:
            self.lost |= set(self.owned) - guard.owned - self.lost
            self.cancelled |= guard.cancelled

    def heartbeat(self) -> None:
        owned = self._still_owned()
        if owned:
            self._apply(self._store.heartbeat(worker_id=self._worker_id, owned=owned))

    def should_stop(self) -> bool:
        if self._stopping.is_set():
            return True
        with self._lock:
            gone = self.lost | self.cancelled
        return gone >= set(self.owned)


class WorkerLoop:
    """One worker: claims packs from ``store`` and trains them until stopped.

    The real worker passes ``db`` (a DatabaseStore and a WorkloadResolver on
    it are made); unit tests pass ``store``, ``clock``, ``resolver`` and
    ``trainer_factory`` fakes instead.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database | None = None,
        store: WorkerStore | None = None,
        device: str = "cpu",
        worker_id: str | None = None,
        clock: Clock | None = None,
        resolver: WorkloadSource | None = None,
        trainer_factory: TrainerFactory | None = None,
    ) -> None:
        if store is None or resolver is None:
            if db is None:
                raise TypeError("WorkerLoop needs a database, or both a store and a workload resolver")
            store = store or DatabaseStore(db)
            resolver = resolver or WorkloadResolver(db)
        self.settings = settings
        self.store: WorkerStore = store
        self.device = device
        self.worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.clock: Clock = clock or SystemClock()
        self.stopping = threading.Event()
        self.stats = WorkerStats()
        self._resolver: WorkloadSource = resolver
        self._trainer_for: TrainerFactory = trainer_factory or self._default_trainer
        self._last_reap: float | None = None
        self._last_train = 0.0
        # The worker owns its trainers' shared caches (compiled functions, workloads' data).
        self._trainers = TrainerChooser(device=device, max_replicas=settings.pack_max_replicas)

    # ------------------------------------------------------------ lifecycle

    def register(self) -> None:
        self.store.register(
            worker_id=self.worker_id, hostname=socket.gethostname(), pid=os.getpid(), device=self.device
        )

    def run(self, *, max_idle_s: float | None = None, max_configs: int | None = None) -> None:
        """Work until ``stopping`` is set (or idle for ``max_idle_s``, or ``max_configs`` done)."""
        self.register()
        idle_since = self.clock.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    did = self.run_once()
                except DatabaseUnavailable as exc:
                    log.warning("database unavailable, retrying: %s", exc.detail)
                    did = False
                    self.clock.wait(self.stopping, min(5.0, self.settings.poll_interval_s * 3))
                except Exception:  # noqa: BLE001 - the loop outlives any one bug; the trial is reaped
                    log.exception("worker loop iteration failed; going on")
                    did = False
                    self.clock.wait(self.stopping, min(5.0, self.settings.poll_interval_s * 3))
                if did:
                    idle_since = self.clock.monotonic()
                    if max_configs is not None and self.stats.trials_done >= max_configs:
                        break
                    continue
                if max_idle_s is not None and self.clock.monotonic() - idle_since > max_idle_s:
                    break
                self.clock.wait(self.stopping, self.settings.poll_interval_s)
        finally:
            try:
                self.store.set_state(worker_id=self.worker_id, state=WorkerState.STOPPED)
            except DatabaseUnavailable:
                log.warning("could not mark worker %s stopped", self.worker_id)
            log.info(
                "worker %s stopped: %d configurations, %.1f s busy, %.1f%% outside training",
                self.worker_id,
                self.stats.trials_done,
                self.stats.busy_seconds,
                100 * self.stats.overhead_share,
            )

    # ------------------------------------------------------------ one unit of work

    def _maybe_reap(self) -> None:
        now = self.clock.monotonic()
        if self._last_reap is not None and now - self._last_reap < self.settings.heartbeat_interval_s:
            return
        self._last_reap = now
        self.store.reap_stale(grace_s=self.settings.heartbeat_grace_s, max_retries=self.settings.max_retries)

    def run_once(self) -> bool:
        self._maybe_reap()
        claims = self.store.claim(
            worker_id=self.worker_id,
            max_replicas=self.settings.pack_max_replicas,
            live_workers=max(1, self.store.live_workers(grace_s=self.settings.heartbeat_grace_s)),
        )
        if not claims:
            self.store.set_state(worker_id=self.worker_id, state=WorkerState.IDLE)
            return False
        t0 = time.perf_counter()
        self._train_claims(claims)
        busy = time.perf_counter() - t0
        self.stats.busy_seconds += busy
        self.store.set_state(
            worker_id=self.worker_id,
            state=WorkerState.IDLE,
            add_train_seconds=self._last_train,
            add_busy_seconds=busy,
        )
        for sweep_id in {c.sweep_id for c in claims}:
            self._after_config(sweep_id)
        return True

    def _after_config(self, sweep_id: int) -> None:
        if self.store.maybe_refine(sweep_id=sweep_id):
            return
        state = self.store.maybe_finish_sweep(sweep_id=sweep_id)
        if state:
            log.info("sweep %s %s", sweep_id, state)
        if state == SweepState.COMPLETED:
            self._store_report(sweep_id)

    def _store_report(self, sweep_id: int) -> None:
        """Readers then get the finished sweep's edge and diagnosis without recomputing them."""
        try:
            self.store.store_report(sweep_id=sweep_id)
        except Exception:  # noqa: BLE001 - readers fall back to computing on read
            log.exception("could not store the report of sweep %s", sweep_id)

    def _default_trainer(self, workload: Workload, claim: Claim) -> Trainer:
        return self._trainers.trainer_for(workload, TrainingPlan.from_spec(claim.spec))

    def _train_claims(self, claims: Sequence[Claim]) -> None:
        first = claims[0]
        observer = _PackObserver(
            store=self.store,
            clock=self.clock,
            worker_id=self.worker_id,
            stopping=self.stopping,
            claims=claims,
        )
        stop_beat = threading.Event()
        beat = threading.Thread(target=self._beat, args=(observer, stop_beat), daemon=True)
        beat.start()
        self._last_train = 0.0
        try:
            try:
                workload = self._resolver.resolve(first.spec.workload.model_dump(mode="json"))
                trainer = self._trainer_for(workload, first)
                replicas = [
                    ReplicaSpec(
                        key=run.run_id, params=c.params, init_seed=run.init_seed, data_seed=run.data_seed
                    )
                    for c in claims
                    for run in c.runs
                ]
                t0 = time.perf_counter()
                results = trainer.train(workload, replicas, first.epochs, observer)
                self._last_train = time.perf_counter() - t0 - observer.callback_seconds
                self.stats.train_seconds += self._last_train
                _log_training(results)
                prior = _label_prior(workload)
            except Exception as exc:  # a broken workload must not kill the worker
                log.exception("configurations %s failed before training", [c.config_id for c in claims])
                tb = traceback.format_exc()
                results = [
                    ReplicaResult(
                        key=run.run_id,
                        status=RunStatus.ERROR,
                        error=f"{type(exc).__name__}: {exc}",
                        traceback=tb,
                    )
                    for c in claims
                    for run in c.runs
                ]
                prior = (0, None, None)
            observer.flush()
        finally:
            stop_beat.set()
            beat.join(timeout=5)
        if self.stopping.is_set() and not observer.cancelled:
            # SIGTERM: give unfinished configurations back so another worker trains them.
            unfinished = {c.config_id: c.trial_id for c in claims}
            if any(r.status == RunStatus.CANCELLED for r in results):
                self.store.release(owned=unfinished)
                log.info("released configurations %s on shutdown", sorted(unfinished))
                return
        self._finish(claims, results, prior, lost=observer.lost)

    def _finish(
        self,
        claims: Sequence[Claim],
        results: Sequence[ReplicaResult],
        prior: tuple[int, float | None, float | None],
        *,
        lost: set[int],
    ) -> None:
        """Classify each configuration's runs and finish it; skip those a reaper took away."""
        by_key = {r.key: r for r in results}
        num_classes, l_chance, majority = prior
        for c in claims:
            if c.config_id in lost:
                continue
            spec_thresholds = outcomes.thresholds_for(c.spec)
            seed_results = [by_key[run.run_id] for run in c.runs]
            outs = [
                outcomes.outcome(
                    r,
                    run.run_id,
                    num_classes=num_classes,
                    l_chance=l_chance,
                    majority_accuracy=majority,
                    thresholds=spec_thresholds,
                )
                for r, run in zip(seed_results, c.runs, strict=True)
            ]
            value, inter = outcomes.seed_aggregate(seed_results, c.epochs)
            result = ConfigResult(
                config_id=c.config_id,
                trial_id=c.trial_id,
                outcomes=outs,
                value=value,
                intermediate=inter,
                train_seconds=self._last_train,
            )
            if self.store.finish_config(worker_id=self.worker_id, result=result):
                self.stats.trials_done += 1

    def _beat(self, observer: _PackObserver, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.settings.heartbeat_interval_s):
            try:
                observer.heartbeat()
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                log.warning("heartbeat failed", exc_info=True)


def _log_training(results: Sequence[ReplicaResult]) -> None:
    """One line per way the claim's runs were trained: pack size, compaction, compiled function."""
    by_how: dict[str, list[Hashable]] = {}
    for r in results:
        if r.training is not None:
            by_how.setdefault(r.training.describe(), []).append(r.key)
    for how, keys in by_how.items():
        log.info("runs %s trained %s", _id_ranges(keys), how)


def _id_ranges(keys: Sequence[Hashable]) -> str:
    """Run ids as ranges ("3-5, 9"): a pack of 64 runs stays one short line."""
    spans: list[list[int]] = []
    for i in sorted(k for k in keys if isinstance(k, int)):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in spans]
    return ", ".join(parts + [str(k) for k in keys if not isinstance(k, int)])


def _label_prior(workload: Workload) -> tuple[int, float | None, float | None]:
    if workload.num_classes == 0:
        return 0, None, None
    l_chance, majority = label_prior(workload.dataset().y_train)
    return workload.num_classes, l_chance, majority
