"""A real public dataset end to end over HTTP: scikit-learn's bundled digits.

Upload the .npz, register a Keras model JSON on it, sweep learning rate with
real worker processes, and check every run is trained and classified. Runs on
a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import io
from pathlib import Path

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits

from service.core.db import Database
from tests.helpers import start_worker, stop, wait_sweep_done

pytestmark = pytest.mark.slow

RUN_CLASSES = {"diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged"}


def _digits_npz() -> bytes:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))[:600]  # a subset keeps the test to seconds per configuration
    train, val = idx[:480], idx[480:]
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])
    return buf.getvalue()


def _model_json() -> str:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return str(model.to_json())


def test_digits_upload_workload_and_sweep(client: TestClient, db: Database, tmp_path: Path) -> None:
    r = client.post("/v1/datasets", files={"file": ("digits.npz", _digits_npz())}, data={"name": "digits"})
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["summary"]["num_classes"] == 10 and ds["summary"]["input_shape"] == [64]
    r = client.post(
        "/v1/workloads", json={"name": "digits-mlp", "dataset_id": ds["id"], "model": _model_json()}
    )
    assert r.status_code == 201, r.text
    workload = r.json()
    spec = {
        "name": "digits",
        "workload": workload["sweep_ref"],
        "epochs": 6,
        "seeds": 2,
        # 3.0 is far past Adam's edge for this MLP; 3e-3 trains it.
        "space": {"optimizer": ["adam"], "learning_rate": [3e-3, 3.0], "batch_size": [32]},
    }
    r = client.post("/v1/sweeps", json=spec)
    assert r.status_code == 201, r.text
    sweep = r.json()
    procs = [start_worker(db.url, tmp_path / f"w{i}.log", max_idle=5) for i in range(2)]
    try:
        final = wait_sweep_done(client, sweep["id"], timeout=600)
    finally:
        stop(procs)
    assert final["state"] == "completed", (tmp_path / "w0.log").read_text()[-3000:]
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs", params={"limit": 100}).json()["items"]
    assert len(runs) == 4
    assert {r["run_class"] for r in runs} <= RUN_CLASSES and all(r["run_class"] for r in runs)
    by_lr: dict[float, list[dict]] = {}  # type: ignore[type-arg]
    for run in runs:
        by_lr.setdefault(run["params"]["learning_rate"], []).append(run)
    # The trained curve is the real model on the real data: it learns at 3e-3.
    for run in by_lr[3e-3]:
        curve = client.get(f"/v1/runs/{run['id']}/curve").json()["points"]
        assert curve[-1]["accuracy"] > 0.8 > curve[0]["accuracy"], curve[-1]
        assert curve[-1]["val_accuracy"] is not None
    assert all(r["run_class"] != "converged" for r in by_lr[3.0])
