"""service/api/routes/health.py: /healthz never touches the database; /readyz says why it is not ready."""

from __future__ import annotations

from pathlib import Path

import httpx
from alembic import command
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core.db import Database
from service.core.migrate import _alembic_config, head_revision
from tests.conftest import make_settings


def _readyz(url: str) -> httpx.Response:
    """/readyz of an app on ``url``; /healthz answers ok whatever the database's state."""
    db = Database(url)
    try:
        with TestClient(create_app(make_settings(url), db)) as c:
            assert c.get("/healthz").json()["status"] == "ok"
            return c.get("/readyz")
    finally:
        db.dispose()


def test_ready_when_the_schema_is_at_head(client: TestClient, db: Database) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "database": None,
        "migrations": None,
        "detail": None,
    }
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "migrations": head_revision(db.url), "detail": None}


def test_not_ready_while_the_schema_is_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0001")
    r = _readyz(url)
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "database": "ok",
        "migrations": f"0001 (head is {head_revision(url)})",
        "detail": "run `sweeps migrate`",
    }


def test_not_ready_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'sweeps.db'}"
    r = _readyz(url)
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "migrations": None,
        "detail": "OperationalError",
    }
