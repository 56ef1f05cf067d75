"""A finished sweep's stored report: a frozen record, served only while it still describes the sweep."""

from __future__ import annotations

import dataclasses
import json

import pytest

from service.core.config import Settings
from service.core.db import Database
from service.core.repo import reports as reports_repo
from service.core.repo.reports import StoredReport
from service.core.results.loading import load_uncached
from service.core.results.reports import report_json, report_markdown, store_report, stored_report
from service.core.results.views import edge_view
from service.core.states import SweepState
from service.core.sweeps import create_sweep, parse_spec
from service.core.work import claims
from service.core.work.finishing import maybe_finish_sweep
from tests.conftest import small_spec
from tests.helpers import finish_claim


def test_stored_report_is_a_record_of_what_readers_would_compute(db: Database, settings: Settings) -> None:
    """On a SQLite file and on PostgreSQL."""
    sweep, _ = create_sweep(db, settings, parse_spec(small_spec()))
    with db.transaction() as s:
        assert stored_report(s, sweep_id=sweep.id) is None  # nothing stored yet
    while taken := claims.claim(db, "w", max_replicas=2):
        for c in taken:
            assert finish_claim(db, c, worker_id="w", final_loss=0.5)
    assert maybe_finish_sweep(db, sweep.id) == SweepState.COMPLETED
    with db.transaction() as s:
        store_report(s, sweep_id=sweep.id)
    with db.transaction() as s:
        stored = stored_report(s, sweep_id=sweep.id)
        data = load_uncached(s, sweep_id=sweep.id)
    assert isinstance(stored, StoredReport)
    as_stored = json.loads(json.dumps(report_json(data)))  # tuples come back as lists
    assert stored.report == as_stored and stored.report["state"] == SweepState.COMPLETED
    assert stored.markdown == report_markdown(data)
    assert stored.edge == json.loads(json.dumps(edge_view(data)))
    assert stored.runs_done == data.sweep.runs_done == 12 and stored.computed_at is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.markdown = "changed"  # type: ignore[misc]
    # A copy that no longer matches the finished-run count is not served.
    with db.transaction() as s:
        reports_repo.save_report(
            s,
            sweep_id=sweep.id,
            runs_done=stored.runs_done - 1,
            edge=stored.edge,
            report=stored.report,
            markdown=stored.markdown,
        )
    with db.transaction() as s:
        assert stored_report(s, sweep_id=sweep.id) is None
        assert reports_repo.get_report(s, sweep_id=sweep.id) is not None
