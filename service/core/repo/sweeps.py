"""Sweeps: create (with the bulk enqueue of a grid), read with progress, cancel, delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.core.canonical import config_key
from service.core.errors import Conflict, NotFound
from service.core.records import Progress, SweepRecord
from service.core.repo import optuna_trials
from service.core.repo.compare_and_set import updated_one
from service.core.repo.models import Config, CurvePoint, Run, Sweep, SweepReport
from service.core.states import ACTIVE_SWEEP_STATES, ConfigState, RunStatus, SweepState
from service.core.timeutil import aware, utcnow

FINAL_STATES = (SweepState.COMPLETED, SweepState.FAILED, SweepState.CANCELLED)


@dataclass(frozen=True)
class NewSweep:
    name: str
    spec: dict[str, Any]
    workload_key: str
    sampler: str
    n_configs: int
    n_seeds: int
    epochs: int
    study_id: int
    study_name: str
    idempotency_key: str | None
    token_id: int | None


def new_study_name() -> str:
    return f"sweep-{uuid.uuid4().hex[:12]}"


def insert_sweep(session: Session, *, sweep: NewSweep) -> int:
    now = utcnow()
    row = Sweep(
        name=sweep.name,
        study_name=sweep.study_name,
        study_id=sweep.study_id,
        spec=sweep.spec,
        workload_key=sweep.workload_key,
        sampler=sweep.sampler,
        state=SweepState.QUEUED,
        n_configs=sweep.n_configs,
        n_seeds=sweep.n_seeds,
        epochs=sweep.epochs,
        trials_asked=0,
        refine_round=0,
        idempotency_key=sweep.idempotency_key,
        token_id=sweep.token_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def enqueue_configs(
    session: Session,
    *,
    sweep_id: int,
    study_id: int,
    configs: Sequence[dict[str, Any]],
    distributions: dict[str, Any],
    refine_round: int = 0,
) -> int:
    """Configurations as WAITING Optuna trials plus our config rows, in bulk.

    Configurations already in the sweep (same canonical key) are skipped, so
    refinement rounds never train a point twice. Returns how many were added.
    """
    now = utcnow()
    existing = set(session.scalars(select(Config.key).where(Config.sweep_id == sweep_id)))
    fresh: list[dict[str, Any]] = []
    keys: list[str] = []
    for params in configs:
        key = config_key(params)
        if key in existing:
            continue
        existing.add(key)
        fresh.append(params)
        keys.append(key)
    if not fresh:
        return 0
    trial_ids = optuna_trials.enqueue_trials(session, study_id, fresh, distributions, now)
    session.execute(
        insert(Config),
        [
            {
                "sweep_id": sweep_id,
                "key": key,
                "params": params,
                "batch_size": params.get("batch_size"),
                "state": ConfigState.WAITING,
                "trial_id": tid,
                "attempts": 0,
                "refine_round": refine_round,
            }
            for key, params, tid in zip(keys, fresh, trial_ids, strict=True)
        ],
    )
    return len(fresh)


def _progress(session: Session, sweep_ids: Sequence[int]) -> dict[int, Progress]:
    if not sweep_ids:
        return {}
    rows = session.execute(
        select(Config.sweep_id, Config.state, func.count())
        .where(Config.sweep_id.in_(sweep_ids))
        .group_by(Config.sweep_id, Config.state)
    ).all()
    counts: dict[int, dict[str, int]] = {sid: {} for sid in sweep_ids}
    for sid, state, n in rows:
        counts[sid][state] = n
    return {
        sid: Progress(
            waiting=c.get(ConfigState.WAITING, 0),
            running=c.get(ConfigState.RUNNING, 0),
            completed=c.get(ConfigState.COMPLETED, 0),
            failed=c.get(ConfigState.FAILED, 0),
            cancelled=c.get(ConfigState.CANCELLED, 0),
        )
        for sid, c in counts.items()
    }


def _run_counts(session: Session, sweep_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if not sweep_ids:
        return {}
    done = case((Run.status != RunStatus.RUNNING, 1), else_=0)
    rows = session.execute(
        select(Run.sweep_id, func.count(), func.sum(done))
        .where(Run.sweep_id.in_(sweep_ids))
        .group_by(Run.sweep_id)
    ).all()
    return {sid: (int(total), int(d or 0)) for sid, total, d in rows}


def _record(row: Sweep, progress: Progress, runs: tuple[int, int]) -> SweepRecord:
    n_configs = max(row.n_configs, progress.total)
    return SweepRecord(
        id=row.id,
        name=row.name,
        study_name=row.study_name,
        study_id=row.study_id,
        state=row.state,
        workload_key=row.workload_key,
        sampler=row.sampler,
        n_configs=n_configs,
        n_seeds=row.n_seeds,
        epochs=row.epochs,
        spec=row.spec,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        updated_at=aware(row.updated_at),  # type: ignore[arg-type]
        finished_at=aware(row.finished_at),
        refine_round=row.refine_round,
        progress=progress,
        runs_total=n_configs * row.n_seeds,
        runs_done=runs[1],
    )


def get_sweep(session: Session, *, sweep_id: int) -> SweepRecord:
    row = session.get(Sweep, sweep_id)
    if row is None:
        raise NotFound(f"sweep {sweep_id} does not exist; list sweeps with GET /v1/sweeps")
    return _record(
        row, _progress(session, [sweep_id])[sweep_id], _run_counts(session, [sweep_id]).get(sweep_id, (0, 0))
    )


def find_by_idempotency_key(session: Session, *, key: str) -> SweepRecord | None:
    row = session.scalar(select(Sweep).where(Sweep.idempotency_key == key))
    return None if row is None else get_sweep(session, sweep_id=row.id)


def list_sweeps(
    session: Session,
    *,
    state: str | None = None,
    name_contains: str | None = None,
    workload: str | None = None,
    sort: str = "-created",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SweepRecord], int]:
    q = select(Sweep)
    if state:
        q = q.where(Sweep.state == state)
    if name_contains:
        q = q.where(Sweep.name.contains(name_contains, autoescape=True))
    if workload:
        q = q.where(Sweep.workload_key == workload)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    order: Any = {
        "created": Sweep.id.asc(),
        "-created": Sweep.id.desc(),
        "name": Sweep.name.asc(),
        "-name": Sweep.name.desc(),
        "state": Sweep.state.asc(),
        "-state": Sweep.state.desc(),
    }[sort]
    rows = session.scalars(q.order_by(order).limit(limit).offset(offset)).all()
    ids = [r.id for r in rows]
    prog = _progress(session, ids)
    runs = _run_counts(session, ids)
    return [_record(r, prog[r.id], runs.get(r.id, (0, 0))) for r in rows], int(total)


def cancel_sweep(session: Session, *, sweep_id: int) -> SweepRecord:
    """Waiting configurations are cancelled now; running ones stop at their next epoch."""
    row = session.get(Sweep, sweep_id, with_for_update=True)
    if row is None:
        raise NotFound(f"sweep {sweep_id} does not exist")
    if row.state in FINAL_STATES:
        raise Conflict(
            f"sweep {sweep_id} is already {row.state}; only queued or running sweeps can be cancelled"
        )
    now = utcnow()
    row.state = SweepState.CANCELLED
    row.updated_at = now
    row.finished_at = now
    session.execute(
        update(Config)
        .where(Config.sweep_id == sweep_id, Config.state == ConfigState.WAITING)
        .values(state=ConfigState.CANCELLED, finished_at=now)
    )
    optuna_trials.fail_waiting(session, row.study_id, now)
    session.flush()
    return get_sweep(session, sweep_id=sweep_id)


def delete_sweep_rows(session: Session, *, sweep_id: int) -> str:
    """Deletes our rows; returns the study name for the caller to delete in Optuna."""
    row = session.get(Sweep, sweep_id)
    if row is None:
        raise NotFound(f"sweep {sweep_id} does not exist")
    name = row.study_name
    run_ids = select(Run.id).where(Run.sweep_id == sweep_id).scalar_subquery()
    session.execute(delete(CurvePoint).where(CurvePoint.run_id.in_(run_ids)))
    session.execute(delete(Run).where(Run.sweep_id == sweep_id))
    session.execute(delete(Config).where(Config.sweep_id == sweep_id))
    session.execute(delete(SweepReport).where(SweepReport.sweep_id == sweep_id))
    session.delete(row)
    return name


def count_in_flight(session: Session, *, token_id: int | None) -> int:
    q = select(func.count()).select_from(Sweep).where(Sweep.state.in_(ACTIVE_SWEEP_STATES))
    if token_id is not None:
        q = q.where(Sweep.token_id == token_id)
    return int(session.scalar(q) or 0)


# ---------------------------------------------------------------- what the work queue reads and writes


@dataclass(frozen=True)
class WorkSweep:
    """The columns claiming, finishing and refining read (no progress counts)."""

    id: int
    state: str
    sampler: str
    study_id: int
    study_name: str
    spec: dict[str, Any]
    n_configs: int
    n_seeds: int
    epochs: int
    trials_asked: int
    refine_round: int


def _work_sweep(row: Sweep) -> WorkSweep:
    return WorkSweep(
        id=row.id,
        state=row.state,
        sampler=row.sampler,
        study_id=row.study_id,
        study_name=row.study_name,
        spec=dict(row.spec),
        n_configs=row.n_configs,
        n_seeds=row.n_seeds,
        epochs=row.epochs,
        trials_asked=row.trials_asked,
        refine_round=row.refine_round,
    )


def active_for_work(session: Session, *, samplers_only: bool = False) -> list[WorkSweep]:
    """Queued and running sweeps, oldest first (only those a sampler proposes for, if asked)."""
    q = select(Sweep).where(Sweep.state.in_(ACTIVE_SWEEP_STATES))
    if samplers_only:
        q = q.where(Sweep.sampler != "grid")
    return [_work_sweep(r) for r in session.scalars(q.order_by(Sweep.id))]


def get_for_work(session: Session, *, sweep_id: int) -> WorkSweep | None:
    row = session.get(Sweep, sweep_id)
    return None if row is None else _work_sweep(row)


def mark_running(session: Session, *, sweep_id: int, now: datetime) -> None:
    """A queued sweep is running from its first claim on."""
    session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.state == SweepState.QUEUED)
        .values(state=SweepState.RUNNING, updated_at=now)
    )


def take_ask_slot(session: Session, *, sweep_id: int) -> bool:
    """Count one more trial asked of a sampler sweep, if it has any left (compare-and-set)."""
    return updated_one(
        session,
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.trials_asked < Sweep.n_configs,
            Sweep.state.in_(ACTIVE_SWEEP_STATES),
        )
        .values(trials_asked=Sweep.trials_asked + 1),
    )


def give_back_ask_slot(session: Session, *, sweep_id: int) -> None:
    """Undo ``take_ask_slot`` when asking Optuna or storing its answer failed."""
    session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.trials_asked > 0)
        .values(trials_asked=Sweep.trials_asked - 1)
    )


def finish(session: Session, *, sweep_id: int, state: SweepState, now: datetime) -> None:
    session.execute(
        update(Sweep).where(Sweep.id == sweep_id).values(state=state, updated_at=now, finished_at=now)
    )


def advance_refine_round(session: Session, *, sweep_id: int, seen: int) -> bool:
    """Compare-and-set the refinement round from ``seen`` to ``seen + 1``; True for the one winner."""
    return updated_one(
        session,
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.refine_round == seen,
            Sweep.state.in_(ACTIVE_SWEEP_STATES),
        )
        .values(refine_round=seen + 1),
    )


def spend_refine_rounds(session: Session, *, sweep_id: int, rounds: int) -> None:
    session.execute(update(Sweep).where(Sweep.id == sweep_id).values(refine_round=rounds))


def add_configs(session: Session, *, sweep_id: int, added: int) -> None:
    session.execute(update(Sweep).where(Sweep.id == sweep_id).values(n_configs=Sweep.n_configs + added))
