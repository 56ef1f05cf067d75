"""Alembic environment: our schema only, under our own version table.

The version table is ``sweeps_alembic_version`` so it never collides with
Optuna's ``alembic_version`` in the same database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.core.config import get_settings
from service.core.db import make_engine
from service.core.repo.models import Base

VERSION_TABLE = "sweeps_alembic_version"
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `sweeps migrate`")
run_migrations_online()
