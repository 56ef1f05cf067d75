"""A sweep through Debian's PgBouncer in transaction pooling, with two worker processes, exactly once.

PgBouncer (installed by `scripts/setup.sh --test`) is started here on
loopback in front of the suite's PostgreSQL (.ci/pgbouncer.sh), with fewer server connections
than the workers and the API open to it, so transactions of different
clients really share server connections. The API, the sweep's creation
(Optuna's study) and both workers go through it with SWEEPS_DB_PGBOUNCER=true;
only the migrations go to PostgreSQL directly, as docs/kubernetes.md
advises. About 40 s on one shared core (two TensorFlow start-ups).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.api.app import create_app
from service.core import tokens
from service.core.connections import ConnectionBudget
from service.core.db import Database
from tests.conftest import ARTIFACTS, make_settings, small_spec
from tests.helpers import ROOT, free_port, start_worker, stop, wait_sweep_done
from tests.reliability.checks import assert_exactly_once

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PGBOUNCER_SCRIPT = ROOT / ".ci" / "pgbouncer.sh"
SERVER_CONNECTIONS = 3  # fewer than the clients: the API and two workers hold up to 4 each


@pytest.fixture
def bouncer_url(postgres_url: str) -> Iterator[str]:
    if shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists():
        if os.environ.get("SWEEPS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("pgbouncer is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("pgbouncer is not installed (scripts/setup.sh --test installs it)")
    directory = Path(tempfile.mkdtemp(prefix="sweeps-pgbouncer-"))
    port = free_port()
    target = make_url(postgres_url)
    start = [str(port), str(target.port), str(SERVER_CONNECTIONS)]
    subprocess.run(["bash", str(PGBOUNCER_SCRIPT), "start", str(directory), *start], check=True)
    try:
        yield target.set(port=port).render_as_string(hide_password=False)
    finally:
        subprocess.run(["bash", str(PGBOUNCER_SCRIPT), "stop", str(directory)], check=False)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(directory / "pgbouncer.log", ARTIFACTS / "pgbouncer.log")
        shutil.rmtree(directory, ignore_errors=True)


def test_a_sweep_through_pgbouncer_runs_exactly_once(bouncer_url: str, tmp_path: Path) -> None:
    settings = make_settings(bouncer_url, db_pgbouncer=True, db_pool_size=2, db_max_overflow=2)
    db = Database(bouncer_url, ConnectionBudget.from_settings(settings))
    with db.transaction() as s:
        assert s.execute(text("SHOW port")).scalar_one() != str(
            make_url(bouncer_url).port
        )  # a pooler between
        _, secret = tokens.create_token(s, name="pgbouncer")
    env = {"SWEEPS_DB_PGBOUNCER": "true", "SWEEPS_DB_POOL_SIZE": "2", "SWEEPS_DB_MAX_OVERFLOW": "0"}
    workers = [start_worker(bouncer_url, tmp_path / f"worker{i}.log", max_idle=60, **env) for i in range(2)]
    try:
        with TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {secret}"}) as client:
            spec = small_spec(space={"learning_rate": [1e-3, 1e-2], "batch_size": [4, 12]}, epochs=2)
            created = client.post("/v1/sweeps", json=spec)
            assert created.status_code == 201, created.text
            sweep = wait_sweep_done(client, created.json()["id"], timeout=300)
            assert_exactly_once(client, db, sweep, epochs=2)
    finally:
        stop(workers)
        db.dispose()
