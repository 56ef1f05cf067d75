"""The report of a sweep (JSON and Markdown), and the copy kept for a finished sweep.

The bootstrap behind the scaling fit is the slow part of a report; a finished
sweep does not change, so the worker that finishes it stores the edge and the
diagnosis once, and readers get that copy while it still describes the sweep.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.core.analysis import report_to_markdown
from service.core.repo import reports as reports_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.reports import StoredReport
from service.core.results.loading import load_uncached
from service.core.results.sweep_data import SweepData
from service.core.results.views import edge_view


def report_json(data: SweepData) -> dict[str, Any]:
    return {"sweep_id": data.sweep.id, "state": data.sweep.state, **data.report().to_dict()}


def report_markdown(data: SweepData) -> str:
    title = f"Diagnosis of sweep {data.sweep.id}: {data.sweep.name}"
    return report_to_markdown(data.report(), title=title)


def store_report(session: Session, *, sweep_id: int) -> None:
    """Compute the edge and diagnosis of a finished sweep once and keep them."""
    data = load_uncached(session, sweep_id=sweep_id)
    reports_repo.save_report(
        session,
        sweep_id=sweep_id,
        runs_done=data.sweep.runs_done,
        edge=edge_view(data),
        report=report_json(data),
        markdown=report_markdown(data),
    )


def stored_report(session: Session, *, sweep_id: int) -> StoredReport | None:
    """The stored report when it still describes the sweep (same finished-run count and state)."""
    sweep = sweeps_repo.get_sweep(session, sweep_id=sweep_id)
    stored = reports_repo.get_report(session, sweep_id=sweep_id)
    if stored is None or stored.runs_done != sweep.runs_done or stored.report.get("state") != sweep.state:
        return None
    return stored
