"""A binary classifier and a regression model, each compiled as its user compiled it, through a real
sweep: scikit-learn's bundled breast cancer data (sigmoid + binary_crossentropy, RMSprop rho 0.8)
and diabetes data (mean_squared_error). Real HTTP, a real worker process, real Keras training."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer, load_diabetes

from service.core.db import Database
from tests.helpers import start_worker, stop, wait_sweep_done

pytestmark = pytest.mark.slow

RUN_CLASSES = {"diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged"}


def _standardised(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)).astype(np.float32)


def _npz(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int) -> bytes:
    idx = np.random.default_rng(0).permutation(len(x))
    train, val = idx[:n_train], idx[n_train : n_train + n_val]
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])
    return buf.getvalue()


def _upload(client: TestClient, npz: bytes, model: keras.Model, name: str) -> dict[str, Any]:
    r = client.post("/v1/datasets", files={"file": (f"{name}.npz", npz)}, data={"name": name})
    assert r.status_code == 201, r.text
    body = {
        "name": name,
        "dataset_id": r.json()["id"],
        "model": model.to_json(),
        "compile_config": model.get_compile_config(),
    }
    r = client.post("/v1/workloads", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _sweep(
    client: TestClient, db: Database, tmp_path: Path, workload: dict[str, Any], lrs: list[float]
) -> int:
    spec = {
        "name": workload["name"],
        "workload": workload["sweep_ref"],
        "epochs": 8,
        "seeds": 2,
        "space": {"learning_rate": lrs, "batch_size": [32]},
    }
    r = client.post("/v1/sweeps", json=spec)
    assert r.status_code == 201, r.text
    sweep_id = int(r.json()["id"])
    procs = [start_worker(db.url, tmp_path / "w.log", max_idle=5)]
    try:
        final = wait_sweep_done(client, sweep_id, timeout=600)
    finally:
        stop(procs)
    assert final["state"] == "completed", (tmp_path / "w.log").read_text()[-3000:]
    return sweep_id


def test_binary_classifier_with_its_compiled_rmsprop(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    data = load_breast_cancer()
    npz = _npz(_standardised(data.data), data.target.astype(np.int64), 200, 100)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(rho=0.8), loss="binary_crossentropy", metrics=["accuracy"]
    )
    workload = _upload(client, npz, model, "breast-cancer")
    assert workload["task"] == "binary" and workload["compile"]["params"]["rho"] == 0.8
    sweep_id = _sweep(client, db, tmp_path, workload, [3e-3, 30.0])
    configs = client.get(f"/v1/sweeps/{sweep_id}/configs").json()["items"]
    for c in configs:  # the space named no optimizer: every configuration trained with the compiled one
        assert c["trained_with"]["optimizer"] == "rmsprop" and c["trained_with"]["rho"] == 0.8
        assert c["trained_with"]["loss"] == "binary_crossentropy"
    runs = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 100}).json()["items"]
    assert len(runs) == 4 and {r["run_class"] for r in runs} <= RUN_CLASSES
    prior = np.bincount(data.target) / len(data.target)
    for run in runs:
        detail = client.get(f"/v1/runs/{run['id']}").json()
        # Chance is the entropy of the label prior; majority-class accuracy the accuracy floor.
        assert detail["metrics"]["l_chance"] == pytest.approx(-(prior * np.log(prior)).sum(), rel=0.1)
        assert 0.5 < detail["metrics"]["majority_accuracy"] < 0.75
    good = [r for r in runs if r["params"]["learning_rate"] == 3e-3]
    for run in good:
        curve = client.get(f"/v1/runs/{run['id']}/curve").json()["points"]
        assert curve[-1]["accuracy"] > 0.9 and curve[-1]["val_accuracy"] > 0.85, curve[-1]


def test_regression_with_mean_squared_error(client: TestClient, db: Database, tmp_path: Path) -> None:
    data = load_diabetes()
    y = ((data.target - data.target.mean()) / data.target.std()).astype(np.float32)
    npz = _npz(_standardised(data.data), y, 200, 100)
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.5), loss="mean_squared_error")
    workload = _upload(client, npz, model, "diabetes")
    assert workload["task"] == "regression" and workload["loss"] == "mean_squared_error"
    sweep_id = _sweep(client, db, tmp_path, workload, [1e-2, 1e-6])
    runs = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 100}).json()["items"]
    assert len(runs) == 4 and all(r["run_class"] in RUN_CLASSES for r in runs)
    for run in runs:
        detail = client.get(f"/v1/runs/{run['id']}").json()
        # The constant predictor's loss: the variance of the training targets (about 1 here).
        assert 0.7 < detail["metrics"]["l_chance"] < 1.3 and detail["metrics"]["majority_accuracy"] is None
        assert run["final_accuracy"] is None
    learned = [r for r in runs if r["params"]["learning_rate"] == 1e-2]
    assert all(r["final_loss"] < 0.8 for r in learned), learned
    # 1e-6 barely moves: the loss never leaves the constant predictor's, so the runs are stuck.
    frozen = [r for r in runs if r["params"]["learning_rate"] == 1e-6]
    assert all(r["run_class"] in ("stuck_at_chance", "diverged", "slow") for r in frozen), frozen
