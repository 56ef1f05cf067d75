"""Helpers for tests that run real worker processes against a database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.records import Claim, RunOutcome
from service.core.states import RunStatus
from service.core.work.finishing import finish_config

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SWEEPS_DATABASE_URL": url,
        "SWEEPS_HEARTBEAT_INTERVAL_S": "0.5",
        "SWEEPS_HEARTBEAT_GRACE_S": "6",
        "SWEEPS_POLL_INTERVAL_S": "0.2",
        "SWEEPS_LOG_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.update(extra)
    return env


def start_worker(url: str, log: Path, *, max_idle: float = 120, **extra: str) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--max-idle", str(max_idle)],
        env=worker_env(url, **extra),
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_sweep_done(client: TestClient, sweep_id: int, timeout: float = 600) -> dict:  # type: ignore[type-arg]
    state: dict = {}  # type: ignore[type-arg]

    def done() -> bool:
        state.update(client.get(f"/v1/sweeps/{sweep_id}").json())
        return state["state"] in ("completed", "failed", "cancelled")

    wait_for(done, timeout, f"sweep {sweep_id} to finish")
    return state


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


@contextmanager
def live_server(tmp_path: Path, workers: int) -> Iterator[tuple[str, dict[str, str]]]:
    """A live `sweeps serve` (API + ``workers`` local workers) on a SQLite file in ``tmp_path``:
    its base URL and the environment that points the CLI at the same database."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    port = free_port()
    env = worker_env(url)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--workers", str(workers), "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "sweeps serve to answer")
        yield base, env
    finally:
        stop([proc])


def processes_with(*, parent: int | None = None, group: int | None = None) -> list[int]:
    """Live (not zombie) processes whose parent is ``parent`` or whose process group is ``group``,
    read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except OSError:
                continue
            if state != "Z" and int(ppid if parent is not None else pgrp) == (parent or group):
                found.append(int(entry.name))
    return found


def token_for(env: dict[str, str]) -> str:
    """A token in the live server's database, as `sweeps token create` makes one."""
    db = Database(env["SWEEPS_DATABASE_URL"])
    try:
        with db.transaction() as s:
            return tokens.create_token(s, name="client-tests")[1]
    finally:
        db.dispose()


def finish_claim(
    db: Database,
    claim: Claim,
    *,
    worker_id: str,
    final_loss: float,
    intermediate: Sequence[tuple[int, float]] = (),
) -> bool:
    """Finish a claimed configuration as if every seed converged to ``final_loss`` (no training)."""
    outcomes = [
        RunOutcome(
            run_id=run.run_id,
            status=RunStatus.COMPLETED,
            run_class="converged",
            flags=[],
            metrics={},
            epochs_run=3,
            final_loss=final_loss,
            final_accuracy=1.0,
        )
        for run in claim.runs
    ]
    return finish_with(db, claim, outcomes, worker_id=worker_id, value=final_loss, intermediate=intermediate)


def finish_with(
    db: Database,
    claim: Claim,
    outcomes: Sequence[RunOutcome],
    *,
    worker_id: str = "w",
    value: float | None = None,
    intermediate: Sequence[tuple[int, float]] = (),
) -> bool:
    """Finish a claimed configuration with the given outcomes (no training)."""
    return finish_config(
        db,
        config_id=claim.config_id,
        trial_id=claim.trial_id,
        outcomes=outcomes,
        value=value,
        intermediate=intermediate,
        worker_id=worker_id,
        train_seconds=1.0,
    )


def new_sweep(db: Database, settings: Settings, **spec: object) -> int:
    """Create a small sweep (``tests.conftest.small_spec`` with ``spec`` overrides); returns its id."""
    from service.core.sweeps import create_sweep, parse_spec
    from tests.conftest import small_spec

    record, _ = create_sweep(db, settings, parse_spec(small_spec(**spec)))
    return record.id


class LiveServer:
    """uvicorn on 127.0.0.1 and a free port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
