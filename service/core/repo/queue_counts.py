"""Counts over the whole queue for /metrics: grouped in the database, one query each."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.repo.models import Config, Run, Sweep
from service.core.states import ConfigState
from service.core.timeutil import aware


@dataclass(frozen=True)
class QueueCounts:
    configs: dict[tuple[str, str], int]  # (sweep state, config state) -> count
    sweeps: dict[str, int]  # sweep state -> count
    runs: dict[tuple[str, str], int]  # (status, class or "") -> count
    config_seconds: tuple[float, ...]  # claim to finish, of every finished configuration


def queue_counts(session: Session) -> QueueCounts:
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
    seconds = []
    for started, finished in session.execute(
        select(Config.started_at, Config.finished_at).where(
            Config.state.in_((ConfigState.COMPLETED, ConfigState.FAILED)),
            Config.started_at.is_not(None),
            Config.finished_at.is_not(None),
        )
    ):
        a, b = aware(started), aware(finished)
        assert a is not None and b is not None
        seconds.append(max(0.0, (b - a).total_seconds()))
    return QueueCounts(configs=configs, sweeps=sweeps, runs=runs, config_seconds=tuple(seconds))
