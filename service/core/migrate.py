"""Schema management: our Alembic migrations plus Optuna's own tables."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

import migrations

log = logging.getLogger(__name__)
VERSION_TABLE = "sweeps_alembic_version"


def _alembic_config(url: str) -> AlembicConfig:
    ini = Path(migrations.__file__).with_name("alembic.ini")
    cfg = AlembicConfig(str(ini))
    cfg.set_main_option("script_location", str(ini.parent))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def is_current(engine: Engine, url: str) -> bool:
    return current_revision(engine) == head_revision(url)


def upgrade(url: str) -> None:
    """Bring our tables to head, then let Optuna create/upgrade its own."""
    command.upgrade(_alembic_config(url), "head")
    # Optuna creates its tables (and stamps its own alembic_version) on first use.
    import optuna

    optuna.storages.RDBStorage(url, skip_compatibility_check=False).remove_session()
    log.info("database schema is current (%s)", head_revision(url))


def wait_until_current(engine: Engine, url: str, *, timeout_s: float, poll_s: float = 2.0) -> bool:
    """Wait until our schema is at head (another process runs the migrations); False on timeout.

    Pods that start beside the migrations Job (docs/kubernetes.md) wait here
    instead of failing on missing tables; an unreachable database counts as
    not yet current.
    """
    deadline = time.monotonic() + timeout_s
    head = head_revision(url)
    while True:
        try:
            if current_revision(engine) == head:
                return True
        except SQLAlchemyError as exc:
            log.info("waiting for the database: %s", type(exc).__name__)
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
