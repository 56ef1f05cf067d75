"""An unchanged optuna-dashboard reads our studies: the storage stays Optuna's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from service.core.db import Database
from service.core.work.claims import claim
from tests.conftest import small_spec
from tests.helpers import finish_claim, free_port, stop, wait_for


def test_optuna_dashboard_shows_the_sweep_as_a_study(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    sweep = client.post("/v1/sweeps", json=small_spec()).json()
    (taken,) = claim(db, "w", max_replicas=2)
    assert finish_claim(
        db, taken, worker_id="w", final_loss=0.25, intermediate=[(0, 1.8), (1, 0.9), (2, 0.4), (3, 0.25)]
    )

    port = free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "--port", str(port), db.url],
        stdout=(tmp_path / "dash.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/api/studies", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "optuna-dashboard to answer")
        studies = httpx.get(f"{base}/api/studies").json()["study_summaries"]
        (summary,) = [s for s in studies if s["study_name"] == sweep["study_name"]]
        detail = httpx.get(f"{base}/api/studies/{summary['study_id']}", params={"after": 0}).json()
    finally:
        stop([proc])
    trials = detail["trials"]
    assert len(trials) == 6
    done = [t for t in trials if t["state"] == "Complete"]
    assert len(done) == 1 and done[0]["values"] == [0.25]
    assert [v["value"] for v in done[0]["intermediate_values"]] == [1.8, 0.9, 0.4, 0.25]
    assert {p["name"] for p in done[0]["params"]} == {"learning_rate", "batch_size", "optimizer"}
    assert sum(t["state"] == "Waiting" for t in trials) == 5
