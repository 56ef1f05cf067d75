"""Report 1 as a user would meet it: an uploaded Keras LSTM, noisy labels, batch size swept.

Upload a dataset of short sequences whose labels are partly random (so the
loss cannot settle and small batches make it jump), upload an LSTM -> Dense
model like report 1's, sweep batch size {2, 8, 32} at one learning rate with
several seeds, let a real worker train it, and read the answer from /report.
Slow: real Keras training in a worker process, 33 s measured (2 shared CPU cores).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.core.db import Database
from tests.helpers import start_worker, stop, wait_sweep_done

pytestmark = pytest.mark.slow

N, STEPS, CLASSES = 64, 10, 3
BATCHES = [2, 8, 32]


def _noisy_sequences() -> bytes:
    """Sine sequences whose frequency gives the class; 20% of the labels are redrawn at random."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % CLASSES
    t = np.linspace(0, 1, STEPS)
    x = np.sin(2 * np.pi * (1 + y[:, None]) * t[None, :]) + 0.3 * rng.normal(size=(N, STEPS))
    flip = rng.random(N) < 0.2
    y = np.where(flip, rng.integers(0, CLASSES, N), y)
    buf = io.BytesIO()
    np.savez(buf, x_train=x[..., None].astype(np.float32), y_train=y.astype(np.int64))
    return buf.getvalue()


def _lstm() -> str:
    import keras

    inp = keras.Input((STEPS, 1))
    h = keras.layers.LSTM(8)(inp)
    out = keras.layers.Dense(CLASSES, activation="softmax")(h)
    return str(keras.Model(inp, out).to_json())


def test_report_says_fluctuation_falls_with_batch_size(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    ds = client.post(
        "/v1/datasets", files={"file": ("seq.npz", _noisy_sequences(), "application/octet-stream")}
    )
    assert ds.status_code == 201, ds.text
    wl = client.post(
        "/v1/workloads", json={"name": "noisy-lstm", "dataset_id": ds.json()["id"], "model": _lstm()}
    )
    assert wl.status_code == 201, wl.text
    spec: dict[str, Any] = {
        "name": "report-1-as-a-user",
        "workload": {"id": wl.json()["id"]},
        "epochs": 20,
        "seeds": 3,
        "space": {"optimizer": ["rmsprop"], "learning_rate": [0.03], "batch_size": BATCHES},
    }
    created = client.post("/v1/sweeps", json=spec)
    assert created.status_code == 201, created.text
    worker = start_worker(db.url, tmp_path / "worker.log", max_idle=3)
    try:
        final = wait_sweep_done(client, created.json()["id"], timeout=300)
    finally:
        stop([worker])
    assert final["state"] == "completed", (tmp_path / "worker.log").read_text()[-3000:]

    rep = client.get(f"/v1/sweeps/{final['id']}/report").json()
    fl = rep["fluctuation"]
    jumps = {b: j for b, j in fl["jump_by_batch_size"]}
    fit = next(f for f in fl["fits"] if f["along"] == "batch_size")
    medians = [p["median"] for p in fit["points"]]
    print("jumps by batch size:", jumps, "fluctuation medians:", medians, "slope:", fit["slope"], fit["ci"])
    print("headline:", rep["headline"])
    answer = next(a for a in rep["answers"] if a["key"] == "fluctuation")
    print("answer 1:", answer["answer"])
    # Fluctuation decreases with batch size ...
    assert [p["x"] for p in fit["points"]] == BATCHES
    assert medians[0] > medians[-1] and fit["slope"] < 0
    assert jumps[2] > jumps[32]
    # ... and the answer to "is it normal that my loss fluctuates, and why?" names batch size.
    assert fl["effects"][0]["dim"] == "batch_size"
    assert "Batch size moves fluctuation most" in answer["answer"]
    assert "learning_rate with at least two values" in (answer["missing"] or "")
