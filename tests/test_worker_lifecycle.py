"""Worker lifecycle with real worker processes: cancel, SIGTERM, sampler sweeps."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import func, select

from service.core.db import Database
from service.core.repo.models import Config, CurvePoint
from tests.conftest import BUSY_LSTM, small_spec
from tests.helpers import start_worker, stop, wait_for, wait_sweep_done

pytestmark = pytest.mark.slow


def _curves_written(db: Database) -> bool:
    with db.transaction() as s:
        return bool(s.scalar(select(func.count()).select_from(CurvePoint)))


def test_cancel_stops_running_configurations_between_epochs(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    spec = small_spec(
        workload=BUSY_LSTM, epochs=400, space={"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4]}
    )
    sweep = client.post("/v1/sweeps", json=spec).json()
    worker = start_worker(db.url, tmp_path / "w.log", max_idle=3, SWEEPS_PACK_MAX_REPLICAS="2")
    try:
        wait_for(lambda: _curves_written(db), 120, "training to start")
        cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel").json()
        assert cancelled["state"] == "cancelled" and cancelled["progress"]["cancelled"] == 2

        def running_gone() -> bool:
            with db.transaction() as s:
                return not s.scalar(select(func.count()).where(Config.state == "running"))

        wait_for(running_gone, 60, "the running configuration to stop")
        worker.wait(timeout=60)  # goes idle, then exits after --max-idle
    finally:
        stop([worker])
    final = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert final["progress"]["cancelled"] == 3 and final["progress"]["completed"] == 0
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs", params={"status": "cancelled"}).json()
    assert runs["total"] == 2
    # partial curves are kept, far short of the 400 epochs asked for
    curve = client.get(f"/v1/runs/{runs['items'][0]['id']}/curve").json()["points"]
    assert 1 <= len(curve) < 400
    study = optuna.load_study(study_name=sweep["study_name"], storage=db.url)
    assert {t.state for t in study.trials} == {TrialState.FAIL}


def test_sigterm_releases_the_trial_and_another_worker_completes_it(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    spec = small_spec(workload=BUSY_LSTM, epochs=100, space={"learning_rate": [1e-2], "batch_size": [4]})
    sweep = client.post("/v1/sweeps", json=spec).json()
    first = start_worker(db.url, tmp_path / "first.log")
    try:
        wait_for(lambda: _curves_written(db), 120, "training to start")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        stop([first])
    with db.transaction() as s:
        cfg = s.scalars(select(Config)).one()
        assert cfg.state == "waiting" and cfg.worker_id is None
        assert s.scalar(select(func.count()).select_from(CurvePoint)) == 0
    second = start_worker(db.url, tmp_path / "second.log", max_idle=3)
    try:
        final = wait_sweep_done(client, sweep["id"])
    finally:
        stop([second])
    assert final["state"] == "completed" and final["runs_done"] == 2
    study = optuna.load_study(study_name=sweep["study_name"], storage=db.url)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "FAIL"]


def test_random_sampler_sweep_asks_exactly_n_trials(client: TestClient, db: Database, tmp_path: Path) -> None:
    spec = small_spec(
        epochs=2,
        seeds=1,
        sampler={"type": "random", "n_trials": 4, "seed": 1},
        space={
            "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
            "batch_size": [4, 12],
            "optimizer": ["adam", "sgd"],
            "beta_1": {"low": 0.5, "high": 0.95},
        },
    )
    sweep = client.post("/v1/sweeps", json=spec).json()
    assert sweep["n_configs"] == 4 and sweep["progress"]["total"] == 0
    workers = [start_worker(db.url, tmp_path / f"w{i}.log", max_idle=4) for i in range(2)]
    try:
        final = wait_sweep_done(client, sweep["id"])
    finally:
        stop(workers)
    assert final["state"] == "completed" and final["progress"]["completed"] == 4
    study = optuna.load_study(study_name=sweep["study_name"], storage=db.url)
    assert len(study.trials) == 4 and all(t.state == TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert 1e-4 <= t.params["learning_rate"] <= 1e-1
        assert ("beta_1" in t.params) == (t.params["optimizer"] == "adam")
