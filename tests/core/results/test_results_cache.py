"""The analysis cache: keyed by database as well as by sweep, bounded, owned by the Database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.core.config import Settings
from service.core.db import Database
from service.core.migrate import upgrade
from service.core.results.cache import AnalysisCache
from service.core.results.loading import load
from service.core.sweeps import create_sweep, parse_spec
from service.core.work import claims
from service.core.work.finishing import maybe_finish_sweep
from tests.conftest import make_settings, small_spec
from tests.helpers import finish_claim


def _finished_sweep(db: Database, settings: Settings, final_loss: float) -> int:
    """A sweep whose every run converged to ``final_loss``; its id is 1 in a fresh database."""
    sweep, _ = create_sweep(db, settings, parse_spec(small_spec()))
    while taken := claims.claim(db, "w", max_replicas=2):
        for c in taken:
            assert finish_claim(db, c, worker_id="w", final_loss=final_loss)
    maybe_finish_sweep(db, sweep.id)
    return sweep.id


@pytest.fixture
def two_databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """Two SQLite files whose sweeps have the same ids, states and run counts, but other results."""
    dbs = []
    for name, loss in (("a", 0.25), ("b", 0.75)):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        upgrade(url)
        db = Database(url)
        assert _finished_sweep(db, make_settings(url), loss) == 1
        dbs.append(db)
    yield dbs[0], dbs[1]
    for db in dbs:
        db.dispose()


def _losses(db: Database, cache: AnalysisCache) -> set[float | None]:
    with db.transaction() as s:
        return {r.final_loss for r in load(s, sweep_id=1, cache=cache).rows}


def test_one_cache_never_serves_a_sweep_of_another_database(two_databases: tuple[Database, Database]) -> None:
    a, b = two_databases
    shared = AnalysisCache()
    assert _losses(a, shared) == {0.25}
    assert _losses(b, shared) == {0.75}  # same sweep id, finished runs and state: still b's own
    assert len(shared) == 2
    assert _losses(a, shared) == {0.25}


def test_each_database_owns_its_cache(two_databases: tuple[Database, Database]) -> None:
    a, b = two_databases
    assert a.analysis_cache is not b.analysis_cache
    assert _losses(a, a.analysis_cache) == {0.25} and _losses(b, b.analysis_cache) == {0.75}
    assert len(a.analysis_cache) == len(b.analysis_cache) == 1


def test_a_hit_is_the_same_object_until_the_sweep_changes(db: Database, settings: Settings) -> None:
    sweep, _ = create_sweep(db, settings, parse_spec(small_spec()))
    cache = AnalysisCache()
    with db.transaction() as s:
        first = load(s, sweep_id=sweep.id, cache=cache)
        assert load(s, sweep_id=sweep.id, cache=cache) is first
    (claim,) = claims.claim(db, "w", max_replicas=2)
    assert finish_claim(db, claim, worker_id="w", final_loss=0.5)
    with db.transaction() as s:
        after = load(s, sweep_id=sweep.id, cache=cache)
    assert after is not first and len(after.points) == 1 and not first.points


def test_least_recently_used_entries_go_first(db: Database, settings: Settings) -> None:
    ids = [create_sweep(db, settings, parse_spec(small_spec(name=f"s{i}")))[0].id for i in range(3)]
    cache = AnalysisCache(size=2)
    with db.transaction() as s:
        first = load(s, sweep_id=ids[0], cache=cache)
        load(s, sweep_id=ids[1], cache=cache)
        assert load(s, sweep_id=ids[0], cache=cache) is first  # now the most recently used
        load(s, sweep_id=ids[2], cache=cache)  # drops ids[1]
        assert len(cache) == 2
        assert load(s, sweep_id=ids[0], cache=cache) is first
        second = load(s, sweep_id=ids[1], cache=cache)
        assert load(s, sweep_id=ids[1], cache=cache) is second
    cache.clear()
    assert len(cache) == 0
