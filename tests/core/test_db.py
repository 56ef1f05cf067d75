"""The Database object: Optuna's storage belongs to it and shares its connection settings."""

from __future__ import annotations

from sqlalchemy import text

from service.core.db import Database


def test_optuna_storage_is_kept_on_the_database_with_the_same_sqlite_settings(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    other = Database(sqlite_url)
    try:
        storage = db.optuna_storage()
        assert db.optuna_storage() is storage  # built once per Database
        assert other.optuna_storage() is not storage  # and never shared between two of them
        with storage.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 60_000
    finally:
        db.dispose()
        other.dispose()
