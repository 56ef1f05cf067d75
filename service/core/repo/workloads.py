"""Uploaded workloads: a Keras model (``model.to_json()`` or a ``.keras`` file) on an uploaded dataset.

``summary`` holds what the upload's checks found, ``summary["compile"]`` the
compile settings the sweeps use (``service.core.compile_settings``) and
``summary["has_weights"]`` whether saved weights are kept for ``init: saved``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.repo.models import DatasetBlob, UserWorkload
from service.core.timeutil import aware, utcnow


@dataclass(frozen=True)
class WorkloadRecord:
    id: int
    name: str
    dataset_id: int
    loss: str
    metrics: list[str]
    summary: dict[str, Any]  # what building the model against the dataset found
    created_at: datetime

    @property
    def compile(self) -> dict[str, Any] | None:
        """The compile settings sweeps on this workload use (None for uploads without them)."""
        found = self.summary.get("compile")
        return dict(found) if isinstance(found, dict) else None

    @property
    def task(self) -> str:
        return str(self.summary.get("task", "multiclass"))

    @property
    def has_weights(self) -> bool:
        return bool(self.summary.get("has_weights"))


@dataclass(frozen=True)
class StoredModel:
    """What a worker needs to build an uploaded workload; ``npz`` is None if its dataset is gone."""

    name: str
    model_json: str
    loss: str  # the loss spec the trainers deserialize (a Keras name or a serialized config as JSON)
    dataset_id: int
    npz: bytes | None
    compile: dict[str, Any] | None  # WorkloadRecord.compile
    initial_weights: bytes | None


def _record(row: UserWorkload) -> WorkloadRecord:
    return WorkloadRecord(
        id=row.id,
        name=row.name,
        dataset_id=row.dataset_id,
        loss=row.loss,
        metrics=list(row.metrics or []),
        summary=dict(row.summary or {}),
        created_at=aware(row.created_at),  # type: ignore[arg-type]
    )


def insert_workload(
    session: Session,
    *,
    name: str,
    dataset_id: int,
    model_json: str,
    loss: str,
    metrics: list[str],
    summary: dict[str, Any],
    initial_weights: bytes | None = None,
) -> WorkloadRecord:
    summary = {**summary, "has_weights": initial_weights is not None}
    row = UserWorkload(
        name=name,
        dataset_id=dataset_id,
        model_json=model_json,
        loss=loss,
        metrics=list(metrics),
        summary=summary,
        created_at=utcnow(),
        initial_weights=initial_weights,
    )
    session.add(row)
    session.flush()
    return _record(row)


def list_workloads(session: Session, *, limit: int, offset: int) -> tuple[list[WorkloadRecord], int]:
    """Newest first."""
    total = int(session.scalar(select(func.count()).select_from(UserWorkload)) or 0)
    rows = session.scalars(select(UserWorkload).order_by(UserWorkload.id.desc()).limit(limit).offset(offset))
    return [_record(r) for r in rows], total


def find_workload(session: Session, *, workload_id: int) -> WorkloadRecord | None:
    row = session.get(UserWorkload, workload_id)
    return None if row is None else _record(row)


def model_json(session: Session, *, workload_id: int) -> str | None:
    """The workload's Keras model JSON, without its dataset or weights."""
    found: str | None = session.scalar(select(UserWorkload.model_json).where(UserWorkload.id == workload_id))
    return found


def stored_model(session: Session, *, workload_id: int) -> StoredModel | None:
    row = session.get(UserWorkload, workload_id)
    if row is None:
        return None
    blob = session.scalar(select(DatasetBlob.data).where(DatasetBlob.id == row.dataset_id))
    record = _record(row)
    return StoredModel(
        name=row.name,
        model_json=row.model_json,
        loss=str(record.summary.get("loss_spec") or row.loss),
        dataset_id=row.dataset_id,
        npz=None if blob is None else bytes(blob),
        compile=record.compile,
        initial_weights=None if row.initial_weights is None else bytes(row.initial_weights),
    )
