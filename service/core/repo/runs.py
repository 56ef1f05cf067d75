"""Runs and their curves: reading them (with filters and paging) and the worker's writes.

Reading configurations (trials) with filters and paging is here too, because
the API lists them with their runs' filters.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.records import ConfigRecord, CurvePoint, RunOutcome, RunRecord, RunSlot, RunTraining
from service.core.repo import optuna_trials
from service.core.repo.analysis_rows import analysis_columns
from service.core.repo.models import Config, Run
from service.core.repo.models import CurvePoint as CurvePointRow
from service.core.states import RunStatus
from service.core.timeutil import aware


@dataclass(frozen=True)
class ParamFilter:
    """``name`` between ``low`` and ``high`` (inclusive), or equal to ``equals``."""

    name: str
    low: float | None = None
    high: float | None = None
    equals: Any = None

    def matches(self, params: dict[str, Any]) -> bool:
        if self.name not in params:
            return False
        v = params[self.name]
        if self.equals is not None:
            return bool(v == self.equals or str(v) == str(self.equals))
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.low is not None and v < self.low:
            return False
        return not (self.high is not None and v > self.high)


# Columns, not entities: building ORM objects was most of the time of a 1,000-configuration page.
_CONFIG_COLUMNS = (
    Config.id,
    Config.sweep_id,
    Config.params,
    Config.state,
    Config.trial_id,
    Config.attempts,
    Config.refine_round,
    Config.value,
    Config.worker_id,
    Config.started_at,
    Config.finished_at,
    Config.error,
)


def _config_record(row: Config | Row[Any], numbers: dict[int, int]) -> ConfigRecord:
    return ConfigRecord(
        id=row.id,
        sweep_id=row.sweep_id,
        params=dict(row.params),
        state=row.state,
        trial_id=row.trial_id,
        trial_number=numbers.get(row.trial_id) if row.trial_id is not None else None,
        attempts=row.attempts,
        refine_round=row.refine_round,
        value=row.value,
        worker_id=row.worker_id,
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        error=row.error,
    )


def list_configs(
    session: Session,
    *,
    sweep_id: int,
    state: str | None = None,
    filters: Sequence[ParamFilter] = (),
    config_ids: Collection[int] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ConfigRecord], int]:
    """A page of a sweep's configurations by id, and how many match; ``config_ids`` restricts them."""
    q = select(*_CONFIG_COLUMNS).where(Config.sweep_id == sweep_id)
    if state:
        q = q.where(Config.state == state)
    if not filters and config_ids is None:  # the database pages: a 10,000-config sweep stays cheap
        total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
        page = list(session.execute(q.order_by(Config.id).limit(limit).offset(offset)).all())
    else:  # parameter filters match JSON values, so they run here
        rows = list(session.execute(q.order_by(Config.id)).all())
        if filters:
            rows = [r for r in rows if all(f.matches(r.params) for f in filters)]
        if config_ids is not None:
            rows = [r for r in rows if r.id in config_ids]
        total, page = len(rows), rows[offset : offset + limit]
    numbers = optuna_trials.trial_numbers(session, [r.trial_id for r in page if r.trial_id is not None])
    return [_config_record(r, numbers) for r in page], total


def get_config(session: Session, *, sweep_id: int, config_id: int) -> ConfigRecord:
    row = session.get(Config, config_id)
    if row is None or row.sweep_id != sweep_id:
        raise NotFound(f"configuration {config_id} is not in sweep {sweep_id}")
    numbers = optuna_trials.trial_numbers(session, [row.trial_id] if row.trial_id is not None else [])
    return _config_record(row, numbers)


def _run_record(row: Run, params: dict[str, Any], *, with_steps: bool = False) -> RunRecord:
    return RunRecord(
        id=row.id,
        sweep_id=row.sweep_id,
        config_id=row.config_id,
        trial_id=row.trial_id,
        seed=row.seed,
        init_seed=int(row.init_seed),
        data_seed=int(row.data_seed),
        status=row.status,
        run_class=row.run_class,
        flags=list(row.flags or []),
        metrics=dict(row.metrics or {}),
        epochs_run=row.epochs_run,
        final_loss=row.final_loss,
        final_accuracy=row.final_accuracy,
        params=params,
        error=row.error,
        traceback=row.traceback,
        worker_id=row.worker_id,
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        step_losses=list(row.step_losses) if with_steps and row.step_losses else None,
        training=RunTraining.from_json(row.training),
    )


def _runs_query(
    sweep_id: int,
    *,
    status: str | None,
    run_class: str | None,
    seed: int | None,
    config_id: int | None,
) -> Select[tuple[Run, dict[str, Any]]]:
    q = select(Run, Config.params).join(Config, Config.id == Run.config_id).where(Run.sweep_id == sweep_id)
    if status:
        q = q.where(Run.status == status)
    if run_class:
        q = q.where(Run.run_class == run_class)
    if seed is not None:
        q = q.where(Run.seed == seed)
    if config_id is not None:
        q = q.where(Run.config_id == config_id)
    return q


def list_runs(
    session: Session,
    *,
    sweep_id: int,
    status: str | None = None,
    run_class: str | None = None,
    seed: int | None = None,
    config_id: int | None = None,
    filters: Sequence[ParamFilter] = (),
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RunRecord], int]:
    q = _runs_query(sweep_id, status=status, run_class=run_class, seed=seed, config_id=config_id)
    if not filters:
        total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = session.execute(q.order_by(Run.config_id, Run.seed).limit(limit).offset(offset)).all()
        return [_run_record(r, p) for r, p in rows], int(total)
    matching = [
        (r, p)
        for r, p in session.execute(q.order_by(Run.config_id, Run.seed)).all()
        if all(f.matches(p) for f in filters)
    ]
    return [_run_record(r, p) for r, p in matching[offset : offset + limit]], len(matching)


def all_runs(session: Session, *, sweep_id: int) -> list[RunRecord]:
    """Every run of a sweep (analysis aggregates on read; no curves)."""
    rows = session.execute(
        _runs_query(sweep_id, status=None, run_class=None, seed=None, config_id=None).order_by(
            Run.config_id, Run.seed
        )
    ).all()
    return [_run_record(r, p) for r, p in rows]


def get_run(session: Session, *, run_id: int, sweep_id: int | None = None) -> RunRecord:
    row = session.execute(
        select(Run, Config.params).join(Config, Config.id == Run.config_id).where(Run.id == run_id)
    ).first()
    if row is None or (sweep_id is not None and row[0].sweep_id != sweep_id):
        raise NotFound(f"run {run_id} does not exist" + (f" in sweep {sweep_id}" if sweep_id else ""))
    return _run_record(row[0], row[1], with_steps=True)


def finite_or_none(v: float | None) -> float | None:
    """Non-finite numbers are stored as NULL (the run's status says it went non-finite)."""
    return None if v is None or not math.isfinite(v) else float(v)


# The curve table's mapping, both ways; the columns are the record's fields.
_CURVE_FIELDS = tuple(f.name for f in fields(CurvePoint) if f.name != "epoch")


def _curve_row(run_id: int, point: CurvePoint) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run_id, "epoch": point.epoch}
    for name in _CURVE_FIELDS:
        row[name] = finite_or_none(getattr(point, name))
    return row


def _point(row: CurvePointRow) -> CurvePoint:
    return CurvePoint(epoch=row.epoch, **{name: getattr(row, name) for name in _CURVE_FIELDS})


def curve(session: Session, *, run_id: int) -> list[CurvePoint]:
    rows = session.scalars(
        select(CurvePointRow).where(CurvePointRow.run_id == run_id).order_by(CurvePointRow.epoch)
    )
    return [_point(p) for p in rows]


def curves_for_runs(session: Session, *, run_ids: Sequence[int]) -> dict[int, list[CurvePoint]]:
    out: dict[int, list[CurvePoint]] = {rid: [] for rid in run_ids}
    if not run_ids:
        return out
    rows = session.scalars(
        select(CurvePointRow)
        .where(CurvePointRow.run_id.in_(run_ids))
        .order_by(CurvePointRow.run_id, CurvePointRow.epoch)
    )
    for p in rows:
        out[p.run_id].append(_point(p))
    return out


def add_curve_points(
    session: Session, *, points: Sequence[tuple[int, CurvePoint]], config_ids: Collection[int]
) -> int:
    """Store (run id, point) pairs of runs that belong to ``config_ids``; returns how many."""
    if not points or not config_ids:
        return 0
    ours = set(session.scalars(select(Run.id).where(Run.config_id.in_(tuple(config_ids)))))
    rows = [_curve_row(run_id, p) for run_id, p in points if run_id in ours]
    if rows:
        session.execute(insert(CurvePointRow), rows)
    return len(rows)


# ---------------------------------------------------------------- the worker's writes


def start_runs(
    session: Session,
    *,
    sweep_id: int,
    config_id: int,
    trial_id: int,
    worker_id: str,
    seeds: Sequence[tuple[int, int, int]],
    now: datetime,
) -> tuple[RunSlot, ...]:
    """One RUNNING run per (seed, init_seed, data_seed), replacing any of an earlier attempt."""
    delete_runs(session, config_id=config_id)
    session.execute(
        insert(Run),
        [
            {
                "sweep_id": sweep_id,
                "config_id": config_id,
                "trial_id": trial_id,
                "seed": seed,
                "init_seed": init_seed,
                "data_seed": data_seed,
                "status": RunStatus.RUNNING,
                "flags": [],
                "metrics": {},
                "epochs_run": 0,
                "worker_id": worker_id,
                "started_at": now,
            }
            for seed, init_seed, data_seed in seeds
        ],
    )
    rows = session.execute(
        select(Run.id, Run.seed, Run.init_seed, Run.data_seed)
        .where(Run.config_id == config_id)
        .order_by(Run.seed)
    ).all()
    return tuple(
        RunSlot(run_id=r.id, seed=r.seed, init_seed=int(r.init_seed), data_seed=int(r.data_seed))
        for r in rows
    )


def delete_runs(session: Session, *, config_id: int) -> None:
    """The runs of a configuration's attempt and their curves (released or reaped)."""
    run_ids = select(Run.id).where(Run.config_id == config_id).scalar_subquery()
    session.execute(delete(CurvePointRow).where(CurvePointRow.run_id.in_(run_ids)))
    session.execute(delete(Run).where(Run.config_id == config_id))


def store_outcome(session: Session, *, config_id: int, outcome: RunOutcome, now: datetime) -> None:
    o = outcome
    session.execute(
        update(Run)
        .where(Run.id == o.run_id, Run.config_id == config_id)
        .values(
            status=o.status,
            run_class=o.run_class,
            flags=o.flags,
            metrics=o.metrics,
            epochs_run=o.epochs_run,
            final_loss=finite_or_none(o.final_loss),
            final_accuracy=finite_or_none(o.final_accuracy),
            error=o.error,
            traceback=o.traceback,
            step_losses=o.step_losses,
            training=o.training.to_json() if o.training is not None else None,
            finished_at=now,
            **analysis_columns(o.metrics),
        )
    )
