"""While training: heartbeats and epoch writes go through the ownership guard."""

from __future__ import annotations

import math
import time

from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.db import Database
from service.core.records import CurvePoint
from service.core.repo import runs as runs_repo
from service.core.work.claims import claim
from service.core.work.ownership import heartbeat, record_epoch
from service.core.work.reaping import reap_stale
from tests.helpers import new_sweep


def _point(epoch: int, loss: float) -> CurvePoint:
    return CurvePoint(
        epoch=epoch,
        loss=loss,
        accuracy=0.5,
        running_loss=None if epoch == 0 else loss,
        val_loss=None,
        val_accuracy=None,
        learning_rate=1e-3,
        grad_norm=math.inf,
    )


def test_epoch_points_are_stored_for_owned_configurations_only(
    client: TestClient, db: Database, settings: Settings
) -> None:
    new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]})
    mine, lost = claim(db, "w", max_replicas=4)
    owned = {mine.config_id: mine.trial_id, lost.config_id: lost.trial_id}
    time.sleep(0.3)
    heartbeat(db, "w", {mine.config_id: mine.trial_id})
    assert reap_stale(db, grace_s=0.2, max_retries=3) == 1  # ``lost`` went quiet and was retried
    run, other = mine.runs[0].run_id, lost.runs[0].run_id
    guard = record_epoch(
        db, owned, [(run, _point(0, 2.0)), (run, _point(1, math.nan)), (other, _point(0, 1.0))]
    )
    assert guard.owned == {mine.config_id} and guard.cancelled == set()
    with db.transaction() as s:
        assert runs_repo.curves_for_runs(s, run_ids=[run, other]) == {
            run: [
                CurvePoint(0, 2.0, 0.5, None, None, None, 1e-3, None),  # non-finite values stored as NULL
                CurvePoint(1, None, 0.5, None, None, None, 1e-3, None),
            ],
            other: [],
        }
    curve = client.get(f"/v1/runs/{run}/curve").json()
    assert curve["points"][1] == {
        "epoch": 1,
        "loss": None,
        "accuracy": 0.5,
        "running_loss": None,
        "val_loss": None,
        "val_accuracy": None,
        "learning_rate": 1e-3,
        "grad_norm": None,
        "sharpness": None,
        "preconditioned_sharpness": None,
        "stability_threshold": None,
    }


def test_heartbeat_reports_cancelled_sweeps(client: TestClient, db: Database, settings: Settings) -> None:
    sweep_id = new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    (taken,) = claim(db, "w")
    assert heartbeat(db, "w", {taken.config_id: taken.trial_id}).cancelled == set()
    assert client.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 200
    result = heartbeat(db, "w", {taken.config_id: taken.trial_id})
    assert result.owned == {taken.config_id} and result.cancelled == {taken.config_id}
