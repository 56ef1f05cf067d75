"""Worker faults done for real, on SQLite and PostgreSQL: a trial that raises, a worker that stalls.

Real worker processes, real Keras training on tiny data. Each test ends with
the exactly-once check: every configuration one completed trial, every seed
one run with one curve.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import func, select, text

from service.core.db import Database
from service.core.repo.models import Config, CurvePoint, Run
from tests.conftest import BUSY_LSTM, small_spec
from tests.helpers import start_worker, stop, wait_for, wait_sweep_done
from tests.reliability.checks import assert_exactly_once

pytestmark = pytest.mark.slow

# A team's installed workload whose model cannot be built: the exception is
# raised inside the trainer, on the worker, for every replica of the pack.
EXPLODING_PLUGIN = """
from workers.workloads.presets import LeastSquares


class Exploding(LeastSquares):
    def build_model(self):
        raise RuntimeError("exploding workload: build_model failed on purpose")


def make(params):
    return Exploding({"n": 8, "d": 2})
"""


def _install_plugin(root: Path) -> Path:
    site = root / "plugin-site"
    site.mkdir()
    (site / "sweeps_exploding_plugin.py").write_text(EXPLODING_PLUGIN)
    dist = site / "sweeps_exploding_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweeps-exploding-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[stability_sweeps.workloads]\nexploding = sweeps_exploding_plugin:make\n"
    )
    return site


def test_trial_that_raises_is_recorded_and_the_worker_goes_on(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    site = _install_plugin(tmp_path)
    broken = client.post(
        "/v1/sweeps",
        json={
            "name": "explodes",
            "workload": {"entry_point": "exploding", "params": {}},
            "epochs": 3,
            "seeds": 2,
            "space": {"learning_rate": [0.1, 0.2]},
        },
    ).json()
    healthy = client.post(
        "/v1/sweeps", json=small_spec(space={"learning_rate": [1e-2, 1e-1], "batch_size": [4]})
    )
    healthy_sweep = healthy.json()
    log = tmp_path / "worker.log"
    # One worker does both sweeps, oldest first: it must survive the broken one to train the other.
    worker = start_worker(db.url, log, max_idle=5, PYTHONPATH=str(site))
    try:
        bad = wait_sweep_done(client, broken["id"], timeout=300)
        good = wait_sweep_done(client, healthy_sweep["id"], timeout=300)
        assert worker.poll() is None or worker.returncode == 0
    finally:
        stop([worker])
    assert worker.returncode == 0, log.read_text()[-3000:]
    assert bad["state"] == "failed" and bad["progress"]["failed"] == 2, bad
    runs = client.get(f"/v1/sweeps/{broken['id']}/runs", params={"limit": 100}).json()
    assert runs["total"] == 4
    for run in runs["items"]:
        detail = client.get(f"/v1/runs/{run['id']}").json()
        assert detail["status"] == "error"
        assert "exploding workload" in detail["error"]
        assert "Traceback" in detail["traceback"] and "build_model" in detail["traceback"]
    trials = client.get(f"/v1/sweeps/{broken['id']}/configs").json()["items"]
    assert all(t["state"] == "failed" and "exploding workload" in (t["error"] or "") for t in trials), trials
    study = optuna.load_study(study_name=bad["study_name"], storage=db.url)
    assert sorted(t.state.name for t in study.trials) == ["FAIL", "FAIL"]  # failed once, not retried
    with db.transaction() as s:
        per_seed = s.execute(
            select(Run.config_id, Run.seed, func.count())
            .where(Run.sweep_id == broken["id"])
            .group_by(Run.config_id, Run.seed)
        ).all()
    assert len(per_seed) == 4 and {n for *_, n in per_seed} == {1}
    assert_exactly_once(client, db, good, epochs=3)


def _holds_database_locks(db: Database) -> bool:
    """Is another connection inside a transaction right now (a write lock on SQLite)?"""
    if db.is_sqlite:
        path = db.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, timeout=0.2)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
    with db.engine.connect() as conn:
        busy = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
        ).scalar()
    return bool(busy)


def _stop_outside_a_transaction(pid: int, db: Database) -> None:
    """SIGSTOP the worker, but never while it holds a transaction open.

    A process frozen inside a transaction would hold its locks and block every
    other writer: that is a different fault (a hung database client) from the
    one under test (a live process whose heartbeats stop).
    """
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.05)
        if not _holds_database_locks(db):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker was inside a transaction at every attempt to stop it")


def test_stalled_worker_is_retried_and_its_late_result_is_dropped(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    """SIGSTOP: the process lives but its heartbeat stops; SIGCONT after the retry has started."""
    spec = small_spec(
        workload=BUSY_LSTM, epochs=100, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}
    )
    sweep = client.post("/v1/sweeps", json=spec).json()
    victim = start_worker(db.url, tmp_path / "victim.log", max_idle=5, SWEEPS_PACK_MAX_REPLICAS="2")

    def victim_config() -> tuple[int, int, str] | None:
        with db.transaction() as s:
            row = s.execute(
                select(Config.id, Config.trial_id, Config.worker_id)
                .join(Run, Run.config_id == Config.id)
                .join(CurvePoint, CurvePoint.run_id == Run.id)
                .where(Config.sweep_id == sweep["id"], Config.state == "running")
                .limit(1)
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    survivor = None
    try:
        wait_for(lambda: victim_config() is not None, 180, "the victim to write curves")
        config_id, stale_trial, victim_id = victim_config()  # type: ignore[misc]
        _stop_outside_a_transaction(victim.pid, db)
        survivor = start_worker(db.url, tmp_path / "survivor.log", max_idle=8)

        def retried_elsewhere() -> bool:
            with db.transaction() as s:
                cfg = s.get(Config, config_id)
                assert cfg is not None
                return (
                    cfg.trial_id != stale_trial
                    and cfg.state in ("running", "completed")
                    and cfg.attempts == 1
                )

        wait_for(retried_elsewhere, 120, "the stalled trial to be reaped and retried by the survivor")
        assert victim.poll() is None  # it lived through all of it
        os.kill(victim.pid, signal.SIGCONT)
        final = wait_sweep_done(client, sweep["id"], timeout=300)
        victim.wait(timeout=120)  # woke up, found nothing of its own, went idle and exited cleanly
        survivor.wait(timeout=120)
    finally:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGCONT)
        stop([victim] + ([survivor] if survivor else []))
    logs = (tmp_path / "victim.log").read_text()[-3000:]
    assert victim.returncode == 0, logs
    assert_exactly_once(client, db, final, epochs=100)
    with db.transaction() as s:
        writers = set(s.scalars(select(Run.worker_id).where(Run.config_id == config_id)))
        assert victim_id not in writers  # the late result did not overwrite the retry's
    trials = client.get(f"/v1/sweeps/{sweep['id']}/configs").json()["items"]
    assert sorted(t["attempts"] for t in trials) == [0, 1]
    study = optuna.load_study(study_name=final["study_name"], storage=db.url)
    states = {t._trial_id: t.state for t in study.trials}
    assert states[stale_trial] == TrialState.FAIL  # the stalled attempt never completed
    assert sorted(s.name for s in states.values()) == ["COMPLETE", "COMPLETE", "FAIL"]
