"""What /metrics reports about the queue, computed from the database on each scrape.

Every API process and every worker shares one database, so numbers read from
it are the same whichever replica Prometheus scrapes; counters kept in one
process's memory would not be. Only HTTP request metrics (per process by
nature) live in memory, in ``service.api.routes.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.repo.models import Config, Run, Sweep, Worker
from service.core.timeutil import aware, utcnow

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
            n for (sw, st), n in self.configs.items() if st == "waiting" and sw in ("queued", "running")
        )


def _histogram(durations: list[float]) -> Histogram:
    buckets = tuple((b, sum(1 for d in durations if d <= b)) for b in DURATION_BUCKETS)
    return Histogram(
        buckets=(*buckets, (float("inf"), len(durations))), count=len(durations), total=sum(durations)
    )


def snapshot(session: Session, *, grace_s: float) -> QueueSnapshot:
    configs = {
        (sw, st): int(n)
        for sw, st, n in session.execute(
            select(Sweep.state, Config.state, func.count())
            .join(Sweep, Sweep.id == Config.sweep_id)
            .group_by(Sweep.state, Config.state)
        ).all()
    }
    sweeps = {
        st: int(n) for st, n in session.execute(select(Sweep.state, func.count()).group_by(Sweep.state))
    }
    runs = {
        (status, cls or ""): int(n)
        for status, cls, n in session.execute(
            select(Run.status, Run.run_class, func.count()).group_by(Run.status, Run.run_class)
        ).all()
    }
    durations = []
    for started, finished in session.execute(
        select(Config.started_at, Config.finished_at).where(
            Config.state.in_(("completed", "failed")),
            Config.started_at.is_not(None),
            Config.finished_at.is_not(None),
        )
    ):
        a, b = aware(started), aware(finished)
        assert a is not None and b is not None
        durations.append(max(0.0, (b - a).total_seconds()))
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    workers = []
    for w in session.scalars(select(Worker).where(Worker.state != "stopped").order_by(Worker.id)):
        hb = aware(w.heartbeat_at)
        assert hb is not None
        if hb >= cutoff:
            workers.append(WorkerBeat(w.id, w.device, w.state, max(0.0, (now - hb).total_seconds())))
    return QueueSnapshot(
        configs=configs, sweeps=sweeps, runs=runs, durations=_histogram(durations), workers=tuple(workers)
    )
