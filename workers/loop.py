"""The worker loop: claim, heartbeat, train, record, finish. Nothing else.

What to train comes from the queue (service.core.queue); how to train is a
Trainer (workers.training); what the model and data are is a Workload. The
loop survives a failing workload or trainer: the error is stored on the runs
with its traceback and the loop goes on.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from service.core import queue
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import DatabaseUnavailable
from service.core.records import Claim
from service.core.repo import workers as workers_repo
from workers import outcomes
from workers.resolve import WorkloadResolver
from workers.training.choose_trainer import TrainerChooser
from workers.training.training_plan import TrainingPlan
from workers.training.types import EpochRecord, ReplicaResult, ReplicaSpec, Trainer
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


class _PackObserver:
    """Collects per-epoch records of a pack and writes them in bulk; tracks ownership."""

    def __init__(self, loop: WorkerLoop, claims: Sequence[Claim]) -> None:
        self._loop = loop
        self.owned: dict[int, int] = {c.config_id: c.trial_id for c in claims}
        self._config_of_run = {run[0]: c.config_id for c in claims for run in c.runs}
        self._buffer: list[queue.EpochPoint] = []
        self._last_flush = time.monotonic()
        self.lost: set[int] = set()
        self.cancelled: set[int] = set()
        self.callback_seconds = 0.0
        self._lock = threading.Lock()

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        t0 = time.perf_counter()
        for key, r in records:
            run_id = int(key)  # type: ignore[call-overload]
            self._buffer.append(
                queue.EpochPoint(
                    run_id=run_id,
                    config_id=self._config_of_run[run_id],
                    epoch=r.epoch,
                    loss=r.loss,
                    accuracy=r.accuracy,
                    running_loss=r.running_loss,
                    val_loss=r.val_loss,
                    val_accuracy=r.val_accuracy,
                    learning_rate=r.learning_rate,
                    grad_norm=r.grad_norm,
                )
            )
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()
        self.callback_seconds += time.perf_counter() - t0

    def flush(self) -> None:
        if not self._buffer:
            return
        points, self._buffer = self._buffer, []
        with self._lock:
            owned = {c: t for c, t in self.owned.items() if c not in self.lost}
        guard = queue.record_epoch(self._loop.db, owned, points)
        self._apply(guard)
        self._last_flush = time.monotonic()

    def _apply(self, guard: queue.GuardResult) -> None:
        with self._lock:
            self.lost |= set(self.owned) - guard.owned - self.lost
            self.cancelled |= guard.cancelled

    def heartbeat(self) -> None:
        with self._lock:
            owned = {c: t for c, t in self.owned.items() if c not in self.lost}
        if owned:
            self._apply(queue.heartbeat(self._loop.db, self._loop.worker_id, owned))

    def should_stop(self) -> bool:
        if self._loop.stopping.is_set():
            return True
        with self._lock:
            gone = self.lost | self.cancelled
        return gone >= set(self.owned)


@dataclass
class WorkerLoop:
    db: Database
    settings: Settings
    device: str = "cpu"
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    stopping: threading.Event = field(default_factory=threading.Event)
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        self._resolver = WorkloadResolver(self.db)
        self._trainers = TrainerChooser(device=self.device, max_replicas=self.settings.pack_max_replicas)
        self._last_reap = 0.0

    # ------------------------------------------------------------ lifecycle

    def register(self) -> None:
        import os

        with self.db.transaction() as s:
            workers_repo.register(
                s,
                worker_id=self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                device=self.device,
            )

    def run(self, *, max_idle_s: float | None = None, max_configs: int | None = None) -> None:
        """Work until ``stopping`` is set (or idle for ``max_idle_s``, or ``max_configs`` done)."""
        self.register()
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    did = self.run_once()
                except DatabaseUnavailable as exc:
                    log.warning("database unavailable, retrying: %s", exc.detail)
                    did = False
                    self.stopping.wait(min(5.0, self.settings.poll_interval_s * 3))
                except Exception:  # noqa: BLE001 - the loop outlives any one bug; the trial is reaped
                    log.exception("worker loop iteration failed; going on")
                    did = False
                    self.stopping.wait(min(5.0, self.settings.poll_interval_s * 3))
                if did:
                    idle_since = time.monotonic()
                    if max_configs is not None and self.stats.trials_done >= max_configs:
                        break
                    continue
                if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                    break
                self.stopping.wait(self.settings.poll_interval_s)
        finally:
            try:
                with self.db.transaction() as s:
                    workers_repo.set_state(s, worker_id=self.worker_id, state="stopped")
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
        now = time.monotonic()
        if now - self._last_reap < self.settings.heartbeat_interval_s:
            return
        self._last_reap = now
        queue.reap_stale(
            self.db, grace_s=self.settings.heartbeat_grace_s, max_retries=self.settings.max_retries
        )

    def run_once(self) -> bool:
        self._maybe_reap()
        claims = queue.claim(
            self.db,
            self.worker_id,
            max_replicas=self.settings.pack_max_replicas,
            live_workers=self._live_workers(),
        )
        if not claims:
            with self.db.transaction() as s:
                workers_repo.set_state(s, worker_id=self.worker_id, state="idle")
            return False
        t0 = time.perf_counter()
        self._train_claims(claims)
        busy = time.perf_counter() - t0
        self.stats.busy_seconds += busy
        with self.db.transaction() as s:
            workers_repo.set_state(
                s,
                worker_id=self.worker_id,
                state="idle",
                add_train_seconds=self._last_train,
                add_busy_seconds=busy,
            )
        for sweep_id in {c.sweep_id for c in claims}:
            self._after_config(sweep_id)
        return True

    def _live_workers(self) -> int:
        with self.db.transaction() as s:
            return max(1, len(workers_repo.list_workers(s, grace_s=self.settings.heartbeat_grace_s)))

    def _after_config(self, sweep_id: int) -> None:
        from workers.refine import maybe_refine

        if maybe_refine(self.db, sweep_id):
            return
        state = queue.maybe_finish_sweep(self.db, sweep_id)
        if state:
            log.info("sweep %s %s", sweep_id, state)
        if state == "completed":
            self._store_report(sweep_id)

    def _store_report(self, sweep_id: int) -> None:
        """Readers then get the finished sweep's edge and diagnosis without recomputing them."""
        from service.core.sweep_analysis import store_report

        try:
            with self.db.transaction() as s:
                store_report(s, sweep_id=sweep_id)
        except Exception:  # noqa: BLE001 - readers fall back to computing on read
            log.exception("could not store the report of sweep %s", sweep_id)

    def _trainer_for(self, workload: Workload, claim: Claim) -> Trainer:
        return self._trainers.trainer_for(workload, TrainingPlan.from_spec(claim.spec))

    _last_train: float = 0.0

    def _train_claims(self, claims: Sequence[Claim]) -> None:
        first = claims[0]
        observer = _PackObserver(self, claims)
        stop_beat = threading.Event()
        beat = threading.Thread(target=self._beat, args=(observer, stop_beat), daemon=True)
        beat.start()
        self._last_train = 0.0
        try:
            try:
                workload = self._resolver.resolve(first.spec["workload"])
                trainer = self._trainer_for(workload, first)
                replicas = [
                    ReplicaSpec(key=run_id, params=c.params, init_seed=init_seed, data_seed=data_seed)
                    for c in claims
                    for run_id, _seed, init_seed, data_seed in c.runs
                ]
                t0 = time.perf_counter()
                results = trainer.train(workload, replicas, first.epochs, observer)
                self._last_train = time.perf_counter() - t0 - observer.callback_seconds
                self.stats.train_seconds += self._last_train
                prior = _label_prior(workload)
            except Exception as exc:  # a broken workload must not kill the worker
                log.exception("configurations %s failed before training", [c.config_id for c in claims])
                tb = traceback.format_exc()
                results = [
                    ReplicaResult(
                        key=run[0], status="error", error=f"{type(exc).__name__}: {exc}", traceback=tb
                    )
                    for c in claims
                    for run in c.runs
                ]
                workload, prior = None, (0, None, None)
            observer.flush()
        finally:
            stop_beat.set()
            beat.join(timeout=5)
        if self.stopping.is_set() and not observer.cancelled:
            # SIGTERM: give unfinished configurations back so another worker trains them.
            unfinished = {c.config_id: c.trial_id for c in claims}
            if any(r.status == "cancelled" for r in results):
                queue.release(self.db, unfinished)
                log.info("released configurations %s on shutdown", sorted(unfinished))
                return
        by_key = {r.key: r for r in results}
        num_classes, l_chance, majority = prior
        for c in claims:
            if c.config_id in observer.lost:
                continue
            spec_thresholds = outcomes.thresholds_for(c.spec)
            seed_results = [by_key[run[0]] for run in c.runs]
            outs = [
                outcomes.outcome(
                    r,
                    run[0],
                    num_classes=num_classes,
                    l_chance=l_chance,
                    majority_accuracy=majority,
                    thresholds=spec_thresholds,
                )
                for r, run in zip(seed_results, c.runs, strict=True)
            ]
            value, inter = outcomes.seed_aggregate(seed_results, c.epochs)
            if queue.finish_config(
                self.db,
                config_id=c.config_id,
                trial_id=c.trial_id,
                outcomes=outs,
                value=value,
                intermediate=inter,
                worker_id=self.worker_id,
                train_seconds=self._last_train,
            ):
                self.stats.trials_done += 1

    def _beat(self, observer: _PackObserver, stop: threading.Event) -> None:
        while not stop.wait(self.settings.heartbeat_interval_s):
            try:
                observer.heartbeat()
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                log.warning("heartbeat failed", exc_info=True)


def _label_prior(workload: Workload) -> tuple[int, float | None, float | None]:
    from service.core.analysis.classify import label_prior

    if workload.num_classes == 0:
        return 0, None, None
    l_chance, majority = label_prior(workload.dataset().y_train)
    return workload.num_classes, l_chance, majority
