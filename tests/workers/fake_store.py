"""An in-memory WorkerStore (workers/store.py) for unit tests of the worker loop.

``FakeStore`` keeps sweeps, configurations and runs in memory and keeps the
ownership rule of the real store: a worker owns a configuration while it is
running under the trial id it claimed, so a configuration taken away by a
reaper (``reap``) makes later writes report it as not owned, and a cancelled
sweep (``cancel``) is reported by heartbeats and curve writes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.core.records import RunSlot
from service.core.spec import SweepSpec
from service.core.states import ConfigState, RunStatus, SweepState, WorkerState
from workers.store import Claim, ConfigResult, GuardResult, RunEpoch, RunOutcome


@dataclass
class FakeSweep:
    id: int
    spec: dict[str, Any]
    epochs: int
    n_seeds: int
    state: SweepState = SweepState.QUEUED


@dataclass
class FakeConfig:
    id: int
    sweep_id: int
    params: dict[str, Any]
    trial_id: int
    state: ConfigState = ConfigState.WAITING
    worker_id: str | None = None
    value: float | None = None
    error: str | None = None


@dataclass
class FakeRun:
    id: int
    config_id: int
    trial_id: int
    seed: int
    status: str = RunStatus.RUNNING
    outcome: RunOutcome | None = None


@dataclass
class FakeWorker:
    hostname: str
    pid: int
    device: str
    state: WorkerState = WorkerState.IDLE
    train_seconds: float = 0.0
    busy_seconds: float = 0.0
    heartbeats: int = 0


@dataclass
class FakeStore:
    """An in-memory WorkerStore. Tests arrange it with ``add_sweep``, ``reap`` and ``cancel``."""

    sweeps: dict[int, FakeSweep] = field(default_factory=dict)
    configs: dict[int, FakeConfig] = field(default_factory=dict)
    runs: dict[int, FakeRun] = field(default_factory=dict)
    workers: dict[str, FakeWorker] = field(default_factory=dict)
    points: list[RunEpoch] = field(default_factory=list)  # curve points stored
    flushes: list[int] = field(default_factory=list)  # points offered per record_epochs call
    heartbeats: int = 0
    reap_calls: int = 0
    finished: list[int] = field(default_factory=list)  # configurations finished, in order
    dropped: list[int] = field(default_factory=list)  # finish_config calls for configs not owned
    released: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    # Called at the start of every operation with its name (to inject faults).
    on_call: Callable[[str], None] | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ arranging

    def add_sweep(
        self,
        params: Sequence[Mapping[str, Any]],
        *,
        n_seeds: int = 1,
        epochs: int = 3,
        spec: Mapping[str, Any] | None = None,
    ) -> int:
        sweep_id = next(self._ids)
        full_spec = {
            "name": "fake",
            "epochs": epochs,
            "space": {"learning_rate": [0.1]},
            "workload": {"preset": "fake"},
            **(spec or {}),
        }
        self.sweeps[sweep_id] = FakeSweep(id=sweep_id, spec=full_spec, epochs=epochs, n_seeds=n_seeds)
        for p in params:
            config_id = next(self._ids)
            self.configs[config_id] = FakeConfig(
                id=config_id, sweep_id=sweep_id, params=dict(p), trial_id=next(self._ids)
            )
        return sweep_id

    def reap(self, config_id: int) -> None:
        """What another worker's reaper does to a stale configuration: waiting under a new trial."""
        with self._lock:
            self._requeue(self.configs[config_id])

    def cancel(self, sweep_id: int) -> None:
        with self._lock:
            self.sweeps[sweep_id].state = SweepState.CANCELLED
            for c in self.configs.values():
                if c.sweep_id == sweep_id and c.state == ConfigState.WAITING:
                    c.state = ConfigState.CANCELLED

    def runs_of(self, config_id: int) -> list[FakeRun]:
        return sorted((r for r in self.runs.values() if r.config_id == config_id), key=lambda r: r.seed)

    def _requeue(self, cfg: FakeConfig) -> None:
        run_ids = {r.id for r in self.runs_of(cfg.id)}
        self.points = [p for p in self.points if p.run_id not in run_ids]
        for run_id in run_ids:
            del self.runs[run_id]
        cfg.state, cfg.trial_id, cfg.worker_id = ConfigState.WAITING, next(self._ids), None

    def _call(self, name: str) -> None:
        if self.on_call is not None:
            self.on_call(name)

    def _guard(self, owned: Mapping[int, int]) -> GuardResult:
        still = {
            c
            for c, t in owned.items()
            if self.configs[c].trial_id == t and self.configs[c].state == ConfigState.RUNNING
        }
        cancelled = {c for c in still if self.sweeps[self.configs[c].sweep_id].state == SweepState.CANCELLED}
        return GuardResult(owned=still, cancelled=cancelled)

    # ------------------------------------------------------------ the WorkerStore Protocol

    def register(self, *, worker_id: str, hostname: str, pid: int, device: str) -> None:
        self._call("register")
        self.workers[worker_id] = FakeWorker(hostname=hostname, pid=pid, device=device)

    def set_state(
        self,
        *,
        worker_id: str,
        state: WorkerState,
        add_train_seconds: float = 0.0,
        add_busy_seconds: float = 0.0,
    ) -> None:
        self._call("set_state")
        w = self.workers[worker_id]
        w.state = state
        w.train_seconds += add_train_seconds
        w.busy_seconds += add_busy_seconds

    def live_workers(self, *, grace_s: float) -> int:
        self._call("live_workers")
        return sum(w.state != WorkerState.STOPPED for w in self.workers.values())

    def reap_stale(self, *, grace_s: float, max_retries: int) -> int:
        self._call("reap_stale")
        self.reap_calls += 1
        return 0

    def claim(self, *, worker_id: str, max_replicas: int, live_workers: int) -> list[Claim]:
        """Oldest sweep first; as many of its waiting configurations as ``max_replicas`` seeds hold."""
        self._call("claim")
        with self._lock:
            for sweep in sorted(self.sweeps.values(), key=lambda s: s.id):
                if sweep.state not in (SweepState.QUEUED, SweepState.RUNNING):
                    continue
                waiting = [c for c in self.configs.values() if c.sweep_id == sweep.id]
                waiting = [c for c in waiting if c.state == ConfigState.WAITING]
                if not waiting:
                    continue
                sweep.state = SweepState.RUNNING
                self.workers[worker_id].state = WorkerState.TRAINING
                per_pack = max(1, max_replicas // sweep.n_seeds)
                return [self._take(c, sweep, worker_id) for c in waiting[:per_pack]]
        return []

    def _take(self, cfg: FakeConfig, sweep: FakeSweep, worker_id: str) -> Claim:
        cfg.state, cfg.worker_id = ConfigState.RUNNING, worker_id
        runs = []
        for seed in range(sweep.n_seeds):
            run = FakeRun(id=next(self._ids), config_id=cfg.id, trial_id=cfg.trial_id, seed=seed)
            self.runs[run.id] = run
            runs.append(RunSlot(run_id=run.id, seed=seed, init_seed=100 + seed, data_seed=200 + seed))
        return Claim(
            sweep_id=sweep.id,
            config_id=cfg.id,
            trial_id=cfg.trial_id,
            params=dict(cfg.params),
            runs=tuple(runs),
            spec=SweepSpec.model_validate(sweep.spec),
            epochs=sweep.epochs,
        )

    def heartbeat(self, *, worker_id: str, owned: Mapping[int, int]) -> GuardResult:
        self._call("heartbeat")
        with self._lock:
            self.heartbeats += 1
            self.workers[worker_id].heartbeats += 1
            return self._guard(owned)

    def record_epochs(self, *, owned: Mapping[int, int], points: Sequence[RunEpoch]) -> GuardResult:
        self._call("record_epochs")
        with self._lock:
            guard = self._guard(owned)
            self.flushes.append(len(points))
            self.points += [p for p in points if p.config_id in guard.owned]
            return guard

    def finish_config(self, *, worker_id: str, result: ConfigResult) -> bool:
        self._call("finish_config")
        with self._lock:
            config_id, outcomes = result.config_id, result.outcomes
            guard = self._guard({config_id: result.trial_id})
            if config_id not in guard.owned:
                self.dropped.append(config_id)
                return False
            cfg = self.configs[config_id]
            for o in outcomes:
                run = self.runs[o.run_id]
                assert run.config_id == config_id
                run.status, run.outcome = o.status, o
            all_errors = bool(outcomes) and all(o.status == RunStatus.ERROR for o in outcomes)
            if config_id in guard.cancelled or any(o.status == RunStatus.CANCELLED for o in outcomes):
                cfg.state = ConfigState.CANCELLED
            elif all_errors:
                cfg.state = ConfigState.FAILED
            else:
                cfg.state = ConfigState.COMPLETED
            cfg.value, cfg.worker_id = result.value, worker_id
            cfg.error = outcomes[0].error if all_errors else None
            self.finished.append(config_id)
            return True

    def release(self, *, owned: Mapping[int, int]) -> None:
        self._call("release")
        with self._lock:
            for config_id in self._guard(owned).owned:
                self._requeue(self.configs[config_id])
                self.released.append(config_id)

    def maybe_refine(self, *, sweep_id: int) -> bool:
        self._call("maybe_refine")
        return False

    def maybe_finish_sweep(self, *, sweep_id: int) -> SweepState | None:
        self._call("maybe_finish_sweep")
        with self._lock:
            sweep = self.sweeps[sweep_id]
            states = [c.state for c in self.configs.values() if c.sweep_id == sweep_id]
            if sweep.state not in (SweepState.QUEUED, SweepState.RUNNING):
                return None
            if any(s in (ConfigState.WAITING, ConfigState.RUNNING) for s in states):
                return None
            done = ConfigState.COMPLETED in states
            sweep.state = SweepState.COMPLETED if done else SweepState.FAILED
            return sweep.state

    def store_report(self, *, sweep_id: int) -> None:
        self._call("store_report")
        self.reports.append(sweep_id)
