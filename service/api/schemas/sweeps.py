"""A sweep with its progress, and one run's curve."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from service.core.records import CurvePoint, Progress, SweepRecord
from service.core.states import SweepState


class ProgressOut(BaseModel):
    """Configurations by state."""

    waiting: int
    running: int
    completed: int
    failed: int
    cancelled: int
    total: int

    @classmethod
    def of(cls, p: Progress) -> ProgressOut:
        return cls(**asdict(p), total=p.total)


class SweepOut(BaseModel):
    id: int
    name: str
    state: SweepState
    workload: str
    sampler: str
    n_configs: int
    n_seeds: int
    epochs: int
    runs_total: int
    runs_done: int
    progress: ProgressOut
    study_name: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    refine_round: int
    spec: dict[str, Any]

    @classmethod
    def of(cls, r: SweepRecord) -> SweepOut:
        return cls(
            id=r.id,
            name=r.name,
            state=SweepState(r.state),
            workload=r.workload_key,
            sampler=r.sampler,
            n_configs=r.n_configs,
            n_seeds=r.n_seeds,
            epochs=r.epochs,
            runs_total=r.runs_total,
            runs_done=r.runs_done,
            progress=ProgressOut.of(r.progress),
            study_name=r.study_name,
            created_at=r.created_at,
            updated_at=r.updated_at,
            finished_at=r.finished_at,
            refine_round=r.refine_round,
            spec=r.spec,
        )


class CurveOut(BaseModel):
    run_id: int
    points: list[CurvePoint]
    step_losses: list[Any] | None = None
