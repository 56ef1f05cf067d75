"""Reading configurations (trials), runs and curves, with filters and paging."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.records import ConfigRecord, CurvePointRecord, RunRecord
from service.core.repo import optuna_trials
from service.core.repo.models import Config, CurvePoint, Run
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


def curve(session: Session, *, run_id: int) -> list[CurvePointRecord]:
    rows = session.scalars(select(CurvePoint).where(CurvePoint.run_id == run_id).order_by(CurvePoint.epoch))
    return [_point(p) for p in rows]


def _point(p: CurvePoint) -> CurvePointRecord:
    return CurvePointRecord(
        epoch=p.epoch,
        loss=p.loss,
        accuracy=p.accuracy,
        running_loss=p.running_loss,
        val_loss=p.val_loss,
        val_accuracy=p.val_accuracy,
        learning_rate=p.learning_rate,
        grad_norm=p.grad_norm,
    )


def curves_for_runs(session: Session, *, run_ids: Sequence[int]) -> dict[int, list[CurvePointRecord]]:
    out: dict[int, list[CurvePointRecord]] = {rid: [] for rid in run_ids}
    if not run_ids:
        return out
    rows = session.scalars(
        select(CurvePoint).where(CurvePoint.run_id.in_(run_ids)).order_by(CurvePoint.run_id, CurvePoint.epoch)
    )
    for p in rows:
        out[p.run_id].append(_point(p))
    return out


@dataclass(frozen=True)
class RunRow:
    """The columns analysis needs, without curves or tracebacks (fast for 10,000 runs)."""

    run_id: int
    config_id: int
    params: dict[str, Any]
    seed: int
    init_seed: int
    data_seed: int
    status: str
    run_class: str | None
    flags: list[str]
    final_loss: float | None
    final_accuracy: float | None
    metrics: dict[str, Any]


def run_rows(session: Session, *, sweep_id: int) -> list[RunRow]:
    rows = session.execute(
        select(
            Run.id,
            Run.config_id,
            Config.params,
            Run.seed,
            Run.init_seed,
            Run.data_seed,
            Run.status,
            Run.run_class,
            Run.flags,
            Run.final_loss,
            Run.final_accuracy,
            Run.metrics,
        )
        .join(Config, Config.id == Run.config_id)
        .where(Run.sweep_id == sweep_id)
        .order_by(Run.config_id, Run.seed)
    ).all()
    return [
        RunRow(
            run_id=r[0],
            config_id=r[1],
            params=r[2],
            seed=r[3],
            init_seed=int(r[4]),
            data_seed=int(r[5]),
            status=r[6],
            run_class=r[7],
            flags=list(r[8] or []),
            final_loss=r[9],
            final_accuracy=r[10],
            metrics=r[11] or {},
        )
        for r in rows
    ]
