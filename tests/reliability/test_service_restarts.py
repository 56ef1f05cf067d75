"""Restarts done for real: the PostgreSQL server and the API process, each mid-sweep.

The PostgreSQL test starts its own throwaway cluster (``.ci/postgres.sh``) on
a free port and restarts that one, never the shared server other tests use.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service.api.app import create_app
from service.core import tokens
from service.core.db import Database
from service.core.migrate import upgrade
from service.core.repo.models import CurvePoint, Run
from tests.conftest import BUSY_LSTM, make_settings, small_spec
from tests.helpers import ROOT, start_worker, stop, wait_for, wait_sweep_done, worker_env
from tests.reliability.checks import assert_exactly_once

pytestmark = pytest.mark.slow

PG_SCRIPT = ROOT / ".ci" / "postgres.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _curves_written(db: Database, sweep_id: int) -> bool:
    with db.transaction() as s:
        n = s.scalar(
            select(func.count())
            .select_from(CurvePoint)
            .join(Run, Run.id == CurvePoint.run_id)
            .where(Run.sweep_id == sweep_id)
        )
    return bool(n)


# ---------------------------------------------------------------- PostgreSQL restart


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, str]]:
    """(admin URL, data dir) of a private cluster that this test may restart."""
    if not shutil.which("runuser") or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("SWEEPS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries are required for the restart test")
        pytest.skip("PostgreSQL binaries are not installed")
    data = tempfile.mkdtemp(prefix="sweeps-pg-restart-", dir="/tmp")
    os.chmod(data, 0o755)
    port = _free_port()
    out = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", data, str(port)], check=True, capture_output=True, text=True
    )
    try:
        yield out.stdout.strip().splitlines()[-1], data
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", data], check=False, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def _postmaster_start(admin: str) -> Any:
    engine = create_engine(admin, poolclass=NullPool)
    with engine.connect() as conn:
        started = conn.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()
    engine.dispose()
    return started


@pytest.mark.postgres
def test_postgres_restarted_mid_sweep(own_postgres: tuple[str, str], tmp_path: Path) -> None:
    admin, data = own_postgres
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text('CREATE DATABASE "restart_test"'))
    engine.dispose()
    url = make_url(admin).set(database="restart_test").render_as_string(hide_password=False)
    upgrade(url)
    settings = make_settings(url)
    db = Database(url)
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="restart")
    spec = small_spec(
        workload=BUSY_LSTM, epochs=100, space={"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4]}
    )
    with TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {secret}"}) as client:
        sweep = client.post("/v1/sweeps", json=spec).json()
        procs = [
            start_worker(url, tmp_path / f"w{i}.log", max_idle=8, SWEEPS_PACK_MAX_REPLICAS="2")
            for i in range(2)
        ]
        try:
            wait_for(lambda: _curves_written(db, sweep["id"]), 180, "workers to write curves")
            booted = _postmaster_start(admin)
            subprocess.run(["bash", str(PG_SCRIPT), "restart", data], check=True, capture_output=True)
            assert _postmaster_start(admin) > booted  # a real restart: every connection was dropped
            # The API's pooled connections died with the server; pre-ping replaces them.
            wait_for(lambda: client.get("/readyz").status_code == 200, 60, "the API to reconnect")
            assert client.get(f"/v1/sweeps/{sweep['id']}").status_code == 200
            final = wait_sweep_done(client, sweep["id"], timeout=300)
            assert all(p.poll() is None or p.returncode == 0 for p in procs)
        finally:
            stop(procs)
        logs = "\n".join((tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(2))
        assert all(p.returncode == 0 for p in procs), logs
        assert_exactly_once(client, db, final, epochs=100)
    db.dispose()


# ---------------------------------------------------------------- API restart


def _start_api(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--workers",
            "0",
            "--port",
            str(port),
            "--database-url",
            url,
        ],
        env=worker_env(url),
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_api_restarted_mid_sweep(sqlite_url: str, tmp_path: Path) -> None:
    db = Database(sqlite_url)
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="restart")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    api_log = tmp_path / "api.log"
    api = _start_api(sqlite_url, port, api_log)
    worker = None
    spec = small_spec(
        workload=BUSY_LSTM, epochs=100, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}
    )
    key = {"Idempotency-Key": "restart-test-1"}
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    try:
        wait_for(lambda: _ready(http), 60, "the API to start")
        first = http.post("/v1/sweeps", json=spec, headers=key)
        assert first.status_code == 201
        sweep = first.json()
        worker = start_worker(sqlite_url, tmp_path / "worker.log", max_idle=8, SWEEPS_PACK_MAX_REPLICAS="2")
        wait_for(lambda: _curves_written(db, sweep["id"]), 180, "the worker to write curves")
        api.send_signal(signal.SIGKILL)
        api.wait(timeout=30)
        with pytest.raises(httpx.TransportError):
            http.get(f"/v1/sweeps/{sweep['id']}")
        time.sleep(1.0)  # training goes on without the API
        api = _start_api(sqlite_url, port, api_log)
        wait_for(lambda: _ready(http), 60, "the API to come back")
        # A client that never saw the 201 retries: the same sweep, not a second one.
        again = http.post("/v1/sweeps", json=spec, headers=key)
        assert again.status_code == 200 and again.json()["id"] == sweep["id"]
        assert http.get("/v1/sweeps").json()["total"] == 1
        cli = subprocess.run(
            [sys.executable, "-m", "service.cli", "status", str(sweep["id"]), "--server", base],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0 and sweep["name"] in cli.stdout, cli.stderr
        final = wait_sweep_done(http, sweep["id"], timeout=300)  # type: ignore[arg-type]
        assert_exactly_once(http, db, final, epochs=100)
    finally:
        http.close()
        stop([api] + ([worker] if worker else []))
        db.dispose()
    assert worker is not None and worker.returncode == 0
