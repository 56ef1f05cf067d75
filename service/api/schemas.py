"""Response bodies (they document the API in OpenAPI and are checked by schemathesis).

Where the domain's frozen record is already the right shape (a trial, a run,
a curve point, a worker), routes return the record itself: FastAPI documents
and serialises stdlib dataclasses, so the fields are written once.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from service.core.records import CurvePoint, SweepRecord

T = TypeVar("T")


class ErrorOut(BaseModel):
    error: str
    detail: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ProgressOut(BaseModel):
    waiting: int
    running: int
    completed: int
    failed: int
    cancelled: int
    total: int


class SweepOut(BaseModel):
    id: int
    name: str
    state: str
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
        p = r.progress
        return cls(
            id=r.id,
            name=r.name,
            state=r.state,
            workload=r.workload_key,
            sampler=r.sampler,
            n_configs=r.n_configs,
            n_seeds=r.n_seeds,
            epochs=r.epochs,
            runs_total=r.runs_total,
            runs_done=r.runs_done,
            progress=ProgressOut(**asdict(p), total=p.total),
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


class HealthOut(BaseModel):
    status: str
    database: str | None = None
    migrations: str | None = None
    detail: str | None = None
