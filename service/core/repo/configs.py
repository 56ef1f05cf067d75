"""The configs table as the work queue sees it: take, guard, finish, release, reap.

Every statement that changes a configuration a worker may own is guarded by
the trial id it was claimed under (and, where it matters, its state), so a
caller learns from the returned bool whether it still owned the row. The
decisions (which to take, what a finished or stale configuration becomes)
are made in ``service.core.work``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from service.core.repo.compare_and_set import updated_one
from service.core.repo.models import Config, Sweep
from service.core.repo.runs import finite_or_none
from service.core.states import ConfigState, SweepState


@dataclass(frozen=True)
class QueuedConfig:
    """The columns claiming, releasing and reaping read."""

    id: int
    sweep_id: int
    trial_id: int | None
    params: dict[str, Any]
    batch_size: int | None
    state: str
    attempts: int
    worker_id: str | None


def _queued(row: Config) -> QueuedConfig:
    return QueuedConfig(
        id=row.id,
        sweep_id=row.sweep_id,
        trial_id=row.trial_id,
        params=dict(row.params),
        batch_size=row.batch_size,
        state=row.state,
        attempts=row.attempts,
        worker_id=row.worker_id,
    )


def get(session: Session, *, config_id: int) -> QueuedConfig | None:
    row = session.get(Config, config_id)
    return None if row is None else _queued(row)


def oldest_waiting(session: Session, *, sweep_id: int) -> QueuedConfig | None:
    """The oldest waiting configuration no other transaction is taking.

    On PostgreSQL the row is locked and rows other claimers hold are skipped
    (FOR UPDATE SKIP LOCKED), so concurrent workers each get a different one
    instead of all racing for the oldest and all but one coming back empty;
    the trial's compare-and-set in the claim still guarantees exactly once.
    SQLite has no row locks (SQLAlchemy leaves the clause out): one writer.
    """
    row = session.scalar(
        select(Config)
        .where(Config.sweep_id == sweep_id, Config.state == ConfigState.WAITING)
        .order_by(Config.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return None if row is None else _queued(row)


def count_in_states(session: Session, *, sweep_id: int, states: Collection[ConfigState]) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Config)
            .where(Config.sweep_id == sweep_id, Config.state.in_(tuple(states)))
        )
        or 0
    )


def waiting_with_batch_size(
    session: Session, *, sweep_id: int, batch_size: int | None, after: int, limit: int
) -> list[QueuedConfig]:
    """Waiting configurations that train with ``batch_size``, oldest first, other than ``after``."""
    rows = session.scalars(
        select(Config)
        .where(
            Config.sweep_id == sweep_id,
            Config.state == ConfigState.WAITING,
            Config.id != after,
            Config.batch_size == batch_size,
        )
        .order_by(Config.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # as in oldest_waiting
    )
    return [_queued(r) for r in rows]


def take(session: Session, *, config_id: int, trial_id: int, worker_id: str, now: datetime) -> bool:
    """WAITING -> RUNNING for ``worker_id``, only if the row is still waiting under ``trial_id``."""
    return updated_one(
        session,
        update(Config)
        .where(
            Config.id == config_id,
            Config.state == ConfigState.WAITING,
            Config.trial_id == trial_id,
        )
        .values(state=ConfigState.RUNNING, worker_id=worker_id, heartbeat_at=now, started_at=now),
    )


def insert_running(
    session: Session,
    *,
    sweep_id: int,
    key: str,
    params: dict[str, Any],
    trial_id: int,
    worker_id: str,
    now: datetime,
) -> int:
    """A configuration a sampler proposed, already RUNNING for the worker that asked for it."""
    config_id = session.scalar(
        insert(Config)
        .values(
            sweep_id=sweep_id,
            key=key,
            params=params,
            batch_size=params.get("batch_size"),
            state=ConfigState.RUNNING,
            trial_id=trial_id,
            attempts=0,
            refine_round=0,
            worker_id=worker_id,
            heartbeat_at=now,
            started_at=now,
        )
        .returning(Config.id)
    )
    assert config_id is not None
    return int(config_id)


def guard(session: Session, *, config_id: int, trial_id: int, now: datetime) -> bool:
    """The ownership guard: refresh the heartbeat if the row is RUNNING under ``trial_id``.

    It is an UPDATE so that it also takes the row's write lock for the rest of
    the caller's transaction.
    """
    return updated_one(
        session,
        update(Config)
        .where(
            Config.id == config_id,
            Config.trial_id == trial_id,
            Config.state == ConfigState.RUNNING,
        )
        .values(heartbeat_at=now),
    )


def in_cancelled_sweeps(session: Session, *, config_ids: Collection[int]) -> set[int]:
    if not config_ids:
        return set()
    rows = session.execute(
        select(Config.id)
        .join(Sweep, Sweep.id == Config.sweep_id)
        .where(Config.id.in_(tuple(config_ids)), Sweep.state == SweepState.CANCELLED)
    ).all()
    return {r.id for r in rows}


def finish(
    session: Session,
    *,
    config_id: int,
    state: ConfigState,
    value: float | None,
    worker_id: str,
    error: str | None,
    now: datetime,
) -> None:
    session.execute(
        update(Config)
        .where(Config.id == config_id)
        .values(state=state, value=finite_or_none(value), finished_at=now, worker_id=worker_id, error=error)
    )


def requeue(
    session: Session,
    *,
    config_id: int,
    trial_id: int,
    attempts: int | None = None,
    error: str | None = None,
) -> None:
    """WAITING again under a fresh trial, owned by nobody (``attempts``/``error`` when given)."""
    values: dict[str, Any] = {
        "state": ConfigState.WAITING,
        "trial_id": trial_id,
        "worker_id": None,
        "heartbeat_at": None,
    }
    if attempts is not None:
        values["attempts"] = attempts
    if error is not None:
        values["error"] = error
    session.execute(update(Config).where(Config.id == config_id).values(**values))


def stale(session: Session, *, cutoff: datetime) -> list[tuple[int, int]]:
    """(config id, trial id) of RUNNING configurations whose heartbeat is older than ``cutoff``."""
    rows = session.execute(
        select(Config.id, Config.trial_id).where(
            Config.state == ConfigState.RUNNING, Config.heartbeat_at < cutoff
        )
    ).all()
    return [(r.id, r.trial_id) for r in rows]


def mark_reaping(session: Session, *, config_id: int, trial_id: int, cutoff: datetime) -> bool:
    """RUNNING -> REAPING if still stale under ``trial_id``: exactly one reaper wins a configuration."""
    return updated_one(
        session,
        update(Config)
        .where(
            Config.id == config_id,
            Config.trial_id == trial_id,
            Config.state == ConfigState.RUNNING,
            Config.heartbeat_at < cutoff,
        )
        .values(state=ConfigState.REAPING),
    )


def end(
    session: Session, *, config_id: int, state: ConfigState, now: datetime, error: str | None = None
) -> None:
    """A final state without a result (cancelled, or failed for good by the reaper)."""
    values: dict[str, Any] = {"state": state, "finished_at": now}
    if error is not None:
        values["error"] = error
    session.execute(update(Config).where(Config.id == config_id).values(**values))
