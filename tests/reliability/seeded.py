"""A database with a finished, a running and a queued sweep, written the way a worker writes
them (claims, curve points, finishing) but without training, and an uploaded dataset with a
workload on it, so that API fuzzing reaches real rows of every kind in a second."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.records import Claim, CurvePoint
from service.core.repo import workloads as workloads_repo
from service.core.sweeps import create_sweep, parse_spec
from service.core.work import claims, ownership
from service.core.work.finishing import maybe_finish_sweep
from tests.conftest import small_spec
from tests.helpers import finish_claim

WORKER = "seeder"


@dataclass(frozen=True)
class Seeded:
    finished: int
    running: int
    queued: int
    dataset: int
    workload: int


def _curve(c: Claim, db: Database, epochs: int) -> None:
    owned = {c.config_id: c.trial_id}
    for epoch in range(epochs + 1):
        loss = 1.0 / (1 + epoch)
        point = CurvePoint(epoch, loss, 1 - loss / 2, loss if epoch else None, loss, 0.5, 1e-2, 0.1)
        ownership.record_epoch(db, owned, [(run.run_id, point) for run in c.runs])


def seed(db: Database, settings: Settings) -> Seeded:
    space = {"learning_rate": [1e-3, 1e-2], "batch_size": [4, 12]}
    finished, _ = create_sweep(db, settings, parse_spec(small_spec(name="finished", space=space)))
    while taken := claims.claim(db, WORKER, max_replicas=4):
        for c in taken:
            _curve(c, db, c.epochs)
            assert finish_claim(db, c, worker_id=WORKER, final_loss=0.25, intermediate=[(1, 0.5), (2, 0.3)])
    maybe_finish_sweep(db, finished.id)
    running, _ = create_sweep(db, settings, parse_spec(small_spec(name="running", space=space)))
    for c in claims.claim(db, WORKER, max_replicas=2):
        _curve(c, db, 1)
    queued, _ = create_sweep(db, settings, parse_spec(small_spec(name="queued", space=space)))
    dataset, workload = _dataset_and_workload(db, settings)
    return Seeded(
        finished=finished.id, running=running.id, queued=queued.id, dataset=dataset, workload=workload
    )


def _dataset_and_workload(db: Database, settings: Settings) -> tuple[int, int]:
    """A dataset uploaded as a client would; a workload on it stored directly (registering one
    through the API builds the model with Keras, seconds this seed does not need)."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, x_train=rng.normal(size=(12, 3)).astype(np.float32), y_train=np.arange(12) % 2)
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="seeder")
    with TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {secret}"}) as api:
        r = api.post("/v1/datasets", files={"file": ("toy.npz", buf.getvalue())}, data={"name": "toy"})
        assert r.status_code == 201, r.text
        dataset = int(r.json()["id"])
    with db.transaction() as s:
        workload = workloads_repo.insert_workload(
            s,
            name="toy dense",
            dataset_id=dataset,
            model_json=json.dumps({"class_name": "Sequential", "config": {"layers": []}}),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            summary={"params": 8},
        )
    return dataset, workload.id
