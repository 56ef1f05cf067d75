"""Response bodies (they document the API in OpenAPI and are checked by schemathesis)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from service.core.records import ConfigRecord, CurvePointRecord, RunRecord, SweepRecord, WorkerRecord

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
    complete: int
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


class TrialOut(BaseModel):
    """A configuration and its current Optuna trial."""

    id: int
    sweep_id: int
    params: dict[str, Any]
    state: str
    trial_id: int | None
    trial_number: int | None
    attempts: int
    refine_round: int
    value: float | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, r: ConfigRecord) -> TrialOut:
        return cls(**asdict(r))


class RunOut(BaseModel):
    id: int
    sweep_id: int
    config_id: int
    trial_id: int
    seed: int
    init_seed: int
    data_seed: int
    status: str
    run_class: str | None
    flags: list[str]
    metrics: dict[str, Any]
    epochs_run: int
    final_loss: float | None
    final_accuracy: float | None
    params: dict[str, Any]
    error: str | None
    traceback: str | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    step_losses: list[Any] | None = None

    @classmethod
    def of(cls, r: RunRecord) -> RunOut:
        return cls(**asdict(r))


class CurvePointOut(BaseModel):
    epoch: int
    loss: float | None
    accuracy: float | None
    running_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    grad_norm: float | None

    @classmethod
    def of(cls, r: CurvePointRecord) -> CurvePointOut:
        return cls(**asdict(r))


class CurveOut(BaseModel):
    run_id: int
    points: list[CurvePointOut]
    step_losses: list[Any] | None = None


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    device: str
    state: str
    current_trial_id: int | None
    current_sweep_id: int | None
    started_at: datetime
    heartbeat_at: datetime
    trials_done: int
    train_seconds: float
    busy_seconds: float
    alive: bool

    @classmethod
    def of(cls, r: WorkerRecord) -> WorkerOut:
        return cls(**asdict(r))


class HealthOut(BaseModel):
    status: str
    database: str | None = None
    migrations: str | None = None
    detail: str | None = None
