"""The example entry-point package (examples/entry_point_package) installed for real.

pip installs it into a temporary target; the API lists its workload and a
real worker process with that target on its path trains a sweep that names it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.core.db import Database
from tests.helpers import ROOT, start_worker, stop, wait_sweep_done

pytestmark = pytest.mark.slow
PACKAGE = ROOT / "examples" / "entry_point_package"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    src = tmp_path / "src_copy"  # building writes egg-info next to the sources: keep the repo clean
    shutil.copytree(PACKAGE, src)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    assert list(target.glob("sweeps_example_workload-*.dist-info"))
    monkeypatch.syspath_prepend(str(target))
    yield target
    sys.modules.pop("sweeps_example_workload", None)


def test_installed_entry_point_is_listed_and_trained_by_a_worker(
    installed: Path, client: TestClient, db: Database, tmp_path: Path
) -> None:
    names = [e["name"] for e in client.get("/v1/workloads").json()["entry_points"]]
    assert "two_spirals" in names
    spec = {
        "name": "spirals",
        "workload": {"entry_point": "two_spirals", "params": {"n": 64, "hidden": 8}},
        "epochs": 3,
        "seeds": 2,
        "space": {"optimizer": ["adam"], "learning_rate": [1e-2], "batch_size": [16]},
    }
    sweep = client.post("/v1/sweeps", json=spec).json()
    path = os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])
    worker = start_worker(db.url, tmp_path / "w.log", max_idle=5, PYTHONPATH=path)
    try:
        final = wait_sweep_done(client, sweep["id"], timeout=300)
    finally:
        stop([worker])
    assert final["state"] == "completed", (tmp_path / "w.log").read_text()[-3000:]
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs").json()["items"]
    assert len(runs) == 2 and all(r["status"] == "completed" and r["run_class"] for r in runs)


def test_worker_without_the_package_fails_the_configuration_with_a_clear_error(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    spec = {
        "name": "missing",
        "workload": {"entry_point": "two_spirals", "params": {}},
        "epochs": 1,
        "seeds": 1,
        "space": {"learning_rate": [1e-2]},
    }
    sweep = client.post("/v1/sweeps", json=spec).json()
    worker = start_worker(db.url, tmp_path / "w.log", max_idle=5)
    try:
        final = wait_sweep_done(client, sweep["id"], timeout=300)
    finally:
        stop([worker])
    assert final["state"] in ("failed", "completed")
    text = str(client.get(f"/v1/sweeps/{sweep['id']}/configs").json()) + (tmp_path / "w.log").read_text()
    assert "no workload entry point 'two_spirals'" in text
