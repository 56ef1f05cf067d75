"""The stored edge and diagnosis of finished sweeps (table ``sweep_reports``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.core.repo.models import SweepReport
from service.core.timeutil import aware, utcnow


@dataclass(frozen=True)
class StoredReport:
    """What a reader of a finished sweep gets without recomputing: the /edge and /report bodies."""

    sweep_id: int
    runs_done: int  # finished runs when it was computed
    edge: dict[str, Any]
    report: dict[str, Any]
    markdown: str
    computed_at: datetime | None


def save_report(
    session: Session,
    *,
    sweep_id: int,
    runs_done: int,
    edge: dict[str, Any],
    report: dict[str, Any],
    markdown: str,
) -> None:
    """Insert or replace the sweep's report."""
    session.merge(
        SweepReport(
            sweep_id=sweep_id,
            runs_done=runs_done,
            edge=edge,
            report=report,
            markdown=markdown,
            computed_at=utcnow(),
        )
    )


def get_report(session: Session, *, sweep_id: int) -> StoredReport | None:
    row = session.get(SweepReport, sweep_id)
    if row is None:
        return None
    return StoredReport(
        sweep_id=row.sweep_id,
        runs_done=row.runs_done,
        edge=dict(row.edge),
        report=dict(row.report),
        markdown=row.markdown,
        computed_at=aware(row.computed_at),
    )
