"""service/core/migrate.py: where a database's schema stands, and bringing it to head
(each migration's own effect is tested in tests/migrations/test_migrations.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from service.core.db import make_engine
from service.core.migrate import (
    VERSION_TABLE,
    _alembic_config,
    current_revision,
    head_revision,
    is_current,
    upgrade,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def test_head_is_the_newest_migration_file() -> None:
    newest = max(p.name.split("_")[0] for p in MIGRATIONS.glob("0*.py"))
    assert head_revision("sqlite://") == newest


def test_an_empty_database_is_not_current_until_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = make_engine(url)
    assert current_revision(engine) is None and not is_current(engine, url)
    upgrade(url)
    assert current_revision(engine) == head_revision(url) and is_current(engine, url)
    # Our version table is our own: Optuna keeps its alembic_version beside it.
    assert {VERSION_TABLE, "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_percent_sign_in_the_url_survives_alembics_interpolation() -> None:
    url = "postgresql+psycopg://app:50%25off@db/sweeps"
    assert _alembic_config(url).get_main_option("sqlalchemy.url") == url
