"""The list page's headline cache: owned by the app, keyed by database and by what changes a headline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import headlines as headlines_module
from service.api.app import create_app
from service.api.headlines import HeadlineCache
from service.core.config import Settings
from service.core.db import Database
from service.core.records import SweepRecord
from service.core.states import SweepState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SWEEP = SweepRecord(
    id=1,
    name="s",
    study_name="study",
    study_id=1,
    state=SweepState.RUNNING,
    workload_key="preset:x",
    sampler="grid",
    n_configs=2,
    n_seeds=2,
    epochs=3,
    spec={},
    created_at=NOW,
    updated_at=NOW,
    finished_at=None,
    refine_round=0,
    runs_done=2,
)


class FakeDb:
    """Enough of a Database for the cache: a URL, and transactions whose session names it."""

    analysis_cache = None

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def transaction(self) -> Iterator[str]:
        yield self.url


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every analysis the cache asks for, as (database, sweep); its headline names both."""
    calls: list[tuple[str, int]] = []

    def load(session: str, *, sweep_id: int, cache: Any = None) -> Any:
        calls.append((session, sweep_id))
        headline = f"{session} sweep {sweep_id} call {len(calls)}"
        return SimpleNamespace(report=lambda: SimpleNamespace(headline=headline))

    monkeypatch.setattr(headlines_module, "load", load)
    return calls


def _headline(cache: HeadlineCache, db: FakeDb, sweep: SweepRecord) -> str:
    return cache.headline(db, sweep)  # type: ignore[arg-type]


def test_a_headline_is_computed_once_per_database_and_result(analyses: list[tuple[str, int]]) -> None:
    cache, a, b = HeadlineCache(), FakeDb("sqlite:///a.db"), FakeDb("sqlite:///b.db")
    first = _headline(cache, a, SWEEP)
    assert _headline(cache, a, SWEEP) == first and len(analyses) == 1
    # The same sweep id in another database is another sweep.
    assert _headline(cache, b, SWEEP).startswith("sqlite:///b.db") and len(analyses) == 2
    # A finished run or a new state changes what the headline says.
    _headline(cache, a, replace(SWEEP, runs_done=3))
    _headline(cache, a, replace(SWEEP, state=SweepState.COMPLETED))
    assert len(analyses) == 4


def test_no_finished_runs_needs_no_analysis(analyses: list[tuple[str, int]]) -> None:
    cache, db = HeadlineCache(), FakeDb("sqlite:///a.db")
    assert _headline(cache, db, replace(SWEEP, runs_done=0)) == "No finished runs yet."
    cancelled = replace(SWEEP, runs_done=0, state=SweepState.CANCELLED)
    assert _headline(cache, db, cancelled) == "No finished runs."
    assert analyses == []


def test_the_cache_keeps_its_size(analyses: list[tuple[str, int]]) -> None:
    cache, db = HeadlineCache(size=2), FakeDb("sqlite:///a.db")
    for sid in (1, 2, 3):
        _headline(cache, db, replace(SWEEP, id=sid))
    _headline(cache, db, replace(SWEEP, id=1))  # the oldest was dropped
    assert len(analyses) == 4


def test_each_app_owns_its_cache(settings: Settings, db: Database) -> None:
    one, two = create_app(settings, db), create_app(settings, db)
    assert isinstance(one.state.headlines, HeadlineCache)
    assert one.state.headlines is not two.state.headlines
    with TestClient(one) as c:
        assert c.get("/sweeps").status_code == 200
