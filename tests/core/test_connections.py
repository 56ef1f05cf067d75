"""The connection budget: pool sizes from settings, one bound per process, PgBouncer's driver options.

The SQLite-free unit tests build engines without connecting (well under a
second); the PostgreSQL ones open real connections (about 2 s).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from service.core.config import Settings
from service.core.connections import ConnectionBudget
from service.core.db import Database
from service.core.errors import DatabaseUnavailable

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # never connected to here


def test_the_default_budget_is_the_settings_default() -> None:
    assert ConnectionBudget() == ConnectionBudget.from_settings(Settings())
    assert ConnectionBudget().max_connections == 5 + 5 + 2


def test_pool_sizes_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPS_DB_POOL_SIZE", "2")
    monkeypatch.setenv("SWEEPS_DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("SWEEPS_DB_OPTUNA_POOL_SIZE", "2")
    monkeypatch.setenv("SWEEPS_DB_PGBOUNCER", "true")
    budget = ConnectionBudget.from_settings(Settings())
    assert budget == ConnectionBudget(pool_size=2, max_overflow=0, optuna_pool_size=2, pgbouncer=True)
    assert budget.max_connections == 4


def test_optuna_needs_two_connections() -> None:
    with pytest.raises(ValueError):
        Settings(db_optuna_pool_size=1)


def test_the_engines_pool_follows_the_budget() -> None:
    db = Database(UNREACHABLE, ConnectionBudget(pool_size=3, max_overflow=4, pool_timeout_s=7.0))
    try:
        pool = db.engine.pool
        assert pool.size() == 3  # type: ignore[attr-defined]
        assert pool._max_overflow == 4  # type: ignore[attr-defined]
        assert pool.timeout() == 7.0  # type: ignore[attr-defined]
        assert pool._pre_ping
    finally:
        db.dispose()


def test_pgbouncer_turns_prepared_statements_off_and_only_then() -> None:
    assert ConnectionBudget(pgbouncer=True).ours()["connect_args"] == {"prepare_threshold": None}
    assert ConnectionBudget(pgbouncer=True).optuna()["connect_args"] == {"prepare_threshold": None}
    assert "connect_args" not in ConnectionBudget().ours()
    assert ConnectionBudget(optuna_pool_size=3).optuna()["max_overflow"] == 0


def _backends(admin: str, database: str) -> int:
    engine = create_engine(admin)
    try:
        with engine.connect() as conn:
            n = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": database},
            ).scalar_one()
        return int(n)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_one_process_never_holds_more_than_its_budget(postgres_url: str) -> None:
    budget = ConnectionBudget(
        pool_size=2, max_overflow=0, optuna_pool_size=2, pool_timeout_s=0.3, pgbouncer=True
    )
    db = Database(postgres_url, budget)
    database = db.engine.url.database
    assert database is not None
    before = _backends(postgres_url, database)  # the migrations of the fixture may keep some open
    try:
        db.optuna_storage().get_all_studies()
        hold = threading.Event()
        held = threading.Barrier(3)

        def _hold() -> None:
            with db.transaction() as s:
                s.execute(text("SELECT 1"))
                held.wait()
                hold.wait()

        threads = [threading.Thread(target=_hold) for _ in range(2)]
        for t in threads:
            t.start()
        held.wait()
        # both pooled connections are taken: a third transaction waits pool_timeout_s, then 503
        with pytest.raises(DatabaseUnavailable):
            with db.transaction() as s:
                s.execute(text("SELECT 1"))
        assert _backends(postgres_url, database) - before <= budget.max_connections
        hold.set()
        for t in threads:
            t.join()
        with db.engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        db.dispose()
