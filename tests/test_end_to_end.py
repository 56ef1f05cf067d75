"""A sweep from HTTP to curves in the database, trained by real worker processes.

Runs on a SQLite file and on PostgreSQL. Real Keras training on tiny data.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import func, select

from service.core.db import Database
from service.core.repo.models import Config, CurvePoint, Run, SweepReport
from tests.conftest import BUSY_LSTM, small_spec
from tests.helpers import start_worker, stop, wait_for, wait_sweep_done

pytestmark = pytest.mark.slow


def _assert_complete_and_exact(client: TestClient, db: Database, sweep: dict, epochs: int) -> None:  # type: ignore[type-arg]
    """Every configuration has exactly one completed trial; every seed exactly one run with its curve."""
    sid = sweep["id"]
    runs = client.get(f"/v1/sweeps/{sid}/runs", params={"limit": 1000}).json()
    assert runs["total"] == sweep["n_configs"] * sweep["n_seeds"]
    for run in runs["items"]:
        assert run["status"] in ("completed", "nonfinite"), run
        assert run["run_class"] is not None
        curve = client.get(f"/v1/runs/{run['id']}/curve").json()["points"]
        expected = epochs + 1 if run["status"] == "completed" else len(curve)
        assert [p["epoch"] for p in curve] == list(range(expected))
        assert curve[0]["running_loss"] is None and curve[-1]["learning_rate"] is not None
    with db.transaction() as s:
        per_config = s.execute(
            select(Run.config_id, func.count()).where(Run.sweep_id == sid).group_by(Run.config_id)
        ).all()
        assert {n for _, n in per_config} == {sweep["n_seeds"]}
        assert s.scalar(select(func.count()).select_from(Config).where(Config.state != "completed")) == 0
        dup = s.execute(
            select(CurvePoint.run_id, CurvePoint.epoch, func.count())
            .group_by(CurvePoint.run_id, CurvePoint.epoch)
            .having(func.count() > 1)
        ).all()
        assert dup == []
    study = optuna.load_study(study_name=sweep["study_name"], storage=db.url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == sweep["n_configs"]
    keys = {tuple(sorted(t.params.items())) for t in complete}
    assert len(keys) == sweep["n_configs"]  # one completed trial per configuration
    assert all(t.value is not None and len(t.intermediate_values) == epochs + 1 for t in complete)


def test_sweep_trains_end_to_end_with_two_workers(client: TestClient, db: Database, tmp_path: Path) -> None:
    sweep = client.post("/v1/sweeps", json=small_spec()).json()
    procs = [start_worker(db.url, tmp_path / f"w{i}.log", max_idle=5) for i in range(2)]
    try:
        final = wait_sweep_done(client, sweep["id"])
    finally:
        stop(procs)
    assert final["state"] == "completed", (tmp_path / "w0.log").read_text()[-3000:]
    assert final["progress"]["completed"] == 6 and final["runs_done"] == 12
    _assert_complete_and_exact(client, db, final, epochs=3)
    trials = client.get(f"/v1/sweeps/{sweep['id']}/configs").json()["items"]
    assert all(t["attempts"] == 0 for t in trials)  # nobody trained a trial twice
    workers = client.get("/v1/workers", params={"include_stopped": True}).json()
    assert len(workers) == 2 and sum(w["trials_done"] for w in workers) == 6
    with db.transaction() as s:  # the worker that finished the sweep stored its report
        stored = s.get(SweepReport, sweep["id"])
        assert stored is not None and stored.runs_done == 12
    assert client.get(f"/v1/sweeps/{sweep['id']}/report").json() == stored.report


def test_worker_killed_mid_trial_is_retried_with_nothing_lost_or_duplicated(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    spec = small_spec(
        workload=BUSY_LSTM, epochs=100, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}
    )
    sweep = client.post("/v1/sweeps", json=spec).json()
    victim = start_worker(db.url, tmp_path / "victim.log", SWEEPS_PACK_MAX_REPLICAS="2")

    def training() -> bool:
        with db.transaction() as s:
            return bool(s.scalar(select(func.count()).select_from(CurvePoint)))

    try:
        wait_for(training, 180, "the first worker to start writing curves")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        survivor = start_worker(db.url, tmp_path / "survivor.log", max_idle=5)
        try:
            final = wait_sweep_done(client, sweep["id"])
        finally:
            stop([survivor])
    finally:
        stop([victim])
    assert final["state"] == "completed", (tmp_path / "survivor.log").read_text()[-3000:]
    _assert_complete_and_exact(client, db, final, epochs=100)
    trials = client.get(f"/v1/sweeps/{sweep['id']}/configs").json()["items"]
    assert sorted(t["attempts"] for t in trials) == [0, 1]
    study = optuna.load_study(study_name=final["study_name"], storage=db.url)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE", "FAIL"]
