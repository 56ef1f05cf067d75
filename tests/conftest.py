"""Shared fixtures: real SQLite files, a real PostgreSQL, the real app over HTTP.

PostgreSQL tests need ``SWEEPS_TEST_POSTGRES_URL`` (an admin URL; each test
gets a fresh database). ``.ci/run`` starts a server and sets it, together with
``SWEEPS_TEST_REQUIRE_POSTGRES=1`` so that a missing server fails CI instead
of skipping silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.api.app import create_app
from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.migrate import upgrade

# Tiny versions of the presets: seconds of CPU per configuration.
TINY_LSTM = {"preset": "sensor_lstm", "params": {"n_train": 12, "timesteps": 8, "units": 4}}
# For tests that act on a worker while it trains (kill, SIGTERM, SIGSTOP, restarts): 48 steps
# an epoch, ~40 ms, so 100 epochs train for ~4 s after the first curves are flushed (~1 s after
# the claim). TINY_LSTM's epoch is ~3 ms: its whole run could end before anyone saw it running.
BUSY_LSTM = {"preset": "sensor_lstm", "params": {"n_train": 192, "timesteps": 8, "units": 4}}

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def _postgres_admin_url() -> str | None:
    return os.environ.get("SWEEPS_TEST_POSTGRES_URL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    upgrade(url)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    admin = _postgres_admin_url()
    if not admin:
        if os.environ.get("SWEEPS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("SWEEPS_TEST_POSTGRES_URL is not set but PostgreSQL tests are required")
        pytest.skip("set SWEEPS_TEST_POSTGRES_URL to run PostgreSQL tests")
    name = f"sweeps_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on a SQLite file and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


def make_settings(url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": url,
        "heartbeat_interval_s": 0.5,
        "heartbeat_grace_s": 5.0,
        "poll_interval_s": 0.2,
        "workers": 0,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def token(db: Database) -> str:
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="tests")
    return secret


@pytest.fixture
def client(settings: Settings, db: Database, token: str) -> Iterator[TestClient]:
    app = create_app(settings, db)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def anon_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as c:
        yield c


def small_spec(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": "tiny",
        "workload": TINY_LSTM,
        "epochs": 3,
        "seeds": 2,
        "space": {"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4, 12]},
    }
    spec.update(overrides)
    return spec
