"""What /metrics reports about the queue, computed from the database on each scrape.

Every API process and every worker shares one database, so numbers read from
it are the same whichever replica Prometheus scrapes; counters kept in one
process's memory would not be. Only HTTP request metrics (per process by
nature) live in memory, in ``service.api.routes.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.core.repo import workers as workers_repo
from service.core.repo.queue_counts import queue_counts
from service.core.states import ACTIVE_SWEEP_STATES, ConfigState
from service.core.timeutil import utcnow

# Seconds; a tiny preset trains in well under a second, the 224x224 pixel
# workload for minutes.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), +Inf last
    count: int
    total: float


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    device: str
    state: str
    age_s: float


@dataclass(frozen=True)
class QueueSnapshot:
    configs: dict[tuple[str, str], int]  # (sweep state, config state) -> count
    sweeps: dict[str, int]  # sweep state -> count
    runs: dict[tuple[str, str], int]  # (status, class or "") -> count
    durations: Histogram  # finished configurations, claim to finish
    workers: tuple[WorkerBeat, ...]  # live workers only

    @property
    def queue_depth(self) -> int:
        """Configurations waiting in sweeps that can still run."""
        return sum(
            n
            for (sw, st), n in self.configs.items()
            if st == ConfigState.WAITING and sw in ACTIVE_SWEEP_STATES
        )


def _histogram(durations: list[float]) -> Histogram:
    buckets = tuple((b, sum(1 for d in durations if d <= b)) for b in DURATION_BUCKETS)
    return Histogram(
        buckets=(*buckets, (float("inf"), len(durations))), count=len(durations), total=sum(durations)
    )


def snapshot(session: Session, *, grace_s: float) -> QueueSnapshot:
    counts = queue_counts(session)
    now = utcnow()
    live = workers_repo.list_workers(session, grace_s=grace_s, include_stopped=False)
    workers = tuple(
        WorkerBeat(w.id, w.device, w.state, max(0.0, (now - w.heartbeat_at).total_seconds()))
        for w in sorted(live, key=lambda w: w.id)
    )
    return QueueSnapshot(
        configs=counts.configs,
        sweeps=counts.sweeps,
        runs=counts.runs,
        durations=_histogram(list(counts.config_seconds)),
        workers=workers,
    )
