"""Our tables (SQLAlchemy 2.0 typed models). Alembic owns the schema.

Optuna's tables live in the same database (one study per sweep, one trial per
configuration attempt); ours hold what Optuna has no place for: the sweep
spec, configurations across retries, one run per configuration x seed, and
per-epoch curves. ORM rows never leave ``service.core``: repositories return
frozen records (``service.core.records``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    study_name: Mapped[str] = mapped_column(String(512), unique=True)
    study_id: Mapped[int] = mapped_column(Integer, index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    workload_key: Mapped[str] = mapped_column(String(200))
    sampler: Mapped[str] = mapped_column(String(20))
    # queued -> running -> completed | failed; cancelled at any time.
    state: Mapped[str] = mapped_column(String(20), index=True)
    n_configs: Mapped[int] = mapped_column(Integer)
    n_seeds: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    # Sampler sweeps: how many trials have been asked so far (CAS-incremented).
    trials_asked: Mapped[int] = mapped_column(Integer, default=0)
    refine_round: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Config(Base):
    """One configuration of a sweep, stable across retries of its trial."""

    __tablename__ = "configs"
    __table_args__ = (
        UniqueConstraint("sweep_id", "key", name="uq_configs_sweep_key"),
        Index("ix_configs_sweep_state", "sweep_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    # Canonical JSON of params: the identity of the configuration.
    key: Mapped[str] = mapped_column(String(1000))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Configurations that share a batch size can train in one pack.
    batch_size: Mapped[int | None] = mapped_column(Integer)
    # waiting | running | complete | failed | cancelled
    state: Mapped[str] = mapped_column(String(20))
    trial_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refine_round: Mapped[int] = mapped_column(Integer, default=0)
    # Seed aggregate (median final loss) also written to the Optuna trial.
    value: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    """One seed of one configuration: its class, metrics and (in CurvePoint) curve."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("config_id", "seed", name="uq_runs_config_seed"),
        Index("ix_runs_sweep_class", "sweep_id", "run_class"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    config_id: Mapped[int] = mapped_column(ForeignKey("configs.id", ondelete="CASCADE"))
    trial_id: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    init_seed: Mapped[int] = mapped_column(BigInteger)
    data_seed: Mapped[int] = mapped_column(BigInteger)
    # running | completed | nonfinite | cancelled | error
    status: Mapped[str] = mapped_column(String(20))
    run_class: Mapped[str | None] = mapped_column(String(30))
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    final_loss: Mapped[float | None] = mapped_column(Float)
    final_accuracy: Mapped[float | None] = mapped_column(Float)
    step_losses: Mapped[list[Any] | None] = mapped_column(JSON)
    # How the run was trained (records.RunTraining as JSON); NULL before it was recorded.
    training: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Copies of the metrics the analysis aggregates (ANALYSIS_METRICS), written beside ``metrics``
    # by the same UPDATE: a column reads in a fraction of a json_extract (a cold analysis of a
    # 10,000-run sweep read 13 of them per run, ~20 ms of its 300 ms budget). NULL = not measured.
    # repo/analysis_rows.ANALYSIS_METRICS names them; a test checks each has its column.
    l0: Mapped[float | None] = mapped_column(Float)
    l_chance: Mapped[float | None] = mapped_column(Float)
    epochs_to_target: Mapped[int | None] = mapped_column(Integer)
    fluctuation: Mapped[float | None] = mapped_column(Float)
    jump_p90: Mapped[float | None] = mapped_column(Float)
    running_fluctuation: Mapped[float | None] = mapped_column(Float)
    spikes: Mapped[float | None] = mapped_column(Float)
    largest_spike: Mapped[float | None] = mapped_column(Float)
    step_loss_var: Mapped[float | None] = mapped_column(Float)
    sharpness_peak_ratio: Mapped[float | None] = mapped_column(Float)
    sharpness_reached_epoch: Mapped[float | None] = mapped_column(Float)
    failure_onset_epoch: Mapped[float | None] = mapped_column(Float)
    sharpness_reached_first: Mapped[float | None] = mapped_column(Float)


class CurvePoint(Base):
    __tablename__ = "curve_points"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    loss: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    running_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    grad_norm: Mapped[float | None] = mapped_column(Float)
    sharpness: Mapped[float | None] = mapped_column(Float)
    preconditioned_sharpness: Mapped[float | None] = mapped_column(Float)
    stability_threshold: Mapped[float | None] = mapped_column(Float)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(20))  # idle | training | stopped
    current_trial_id: Mapped[int | None] = mapped_column(Integer)
    current_sweep_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    trials_done: Mapped[int] = mapped_column(Integer, default=0)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    busy_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # sha256 of the secret; the secret itself is shown once, at creation.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DatasetBlob(Base):
    """Uploaded .npz, kept in the database so workers on any machine can load it."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # shapes, dtypes, classes
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserWorkload(Base):
    __tablename__ = "workloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    model_json: Mapped[str] = mapped_column(Text)
    loss: Mapped[str] = mapped_column(String(100))
    metrics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The model.weights.h5 of a .keras upload saved with weights (init: saved); NULL otherwise.
    initial_weights: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)


class SweepReport(Base):
    """The edge and diagnosis of a finished sweep, computed once by the worker that finished it.

    The bootstrap behind the scaling fit is the slow part of a report (a few
    hundred ms on 10,000 runs); a finished sweep does not change, so readers
    get the stored result while ``runs_done`` still matches.
    """

    __tablename__ = "sweep_reports"

    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True)
    runs_done: Mapped[int] = mapped_column(Integer)
    edge: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    markdown: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
