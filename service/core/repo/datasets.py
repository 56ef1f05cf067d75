"""Uploaded datasets (``.npz`` blobs kept in the database so every worker can load them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.repo.models import DatasetBlob
from service.core.timeutil import aware, utcnow


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset without its bytes (those stay in the database until a worker loads them)."""

    id: int
    name: str
    sha256: str
    size_bytes: int
    summary: dict[str, Any]  # shapes, dtypes, classes (service.core.uploads.inspect_npz)
    created_at: datetime


# Columns, not the row: listing datasets must not read their blobs.
_COLUMNS = (
    DatasetBlob.id,
    DatasetBlob.name,
    DatasetBlob.sha256,
    DatasetBlob.size_bytes,
    DatasetBlob.summary,
    DatasetBlob.created_at,
)


def _record(r: Any) -> DatasetRecord:
    return DatasetRecord(
        id=r.id,
        name=r.name,
        sha256=r.sha256,
        size_bytes=r.size_bytes,
        summary=dict(r.summary),
        created_at=aware(r.created_at),  # type: ignore[arg-type]
    )


def insert_dataset(
    session: Session, *, name: str, sha256: str, summary: dict[str, Any], data: bytes
) -> DatasetRecord:
    row = DatasetBlob(
        name=name, sha256=sha256, size_bytes=len(data), summary=summary, data=data, created_at=utcnow()
    )
    session.add(row)
    session.flush()
    return _record(row)


def list_datasets(session: Session, *, limit: int, offset: int) -> tuple[list[DatasetRecord], int]:
    """Newest first."""
    total = int(session.scalar(select(func.count()).select_from(DatasetBlob)) or 0)
    rows = session.execute(select(*_COLUMNS).order_by(DatasetBlob.id.desc()).limit(limit).offset(offset))
    return [_record(r) for r in rows], total


def get_dataset(session: Session, *, dataset_id: int) -> DatasetRecord:
    row = session.execute(select(*_COLUMNS).where(DatasetBlob.id == dataset_id)).first()
    if row is None:
        raise NotFound(
            f"dataset {dataset_id} does not exist; upload one with POST /v1/datasets or list them with "
            "GET /v1/datasets"
        )
    return _record(row)
