"""service/api/routes/runs.py: a sweep's runs, filtered and paged, one run, and its curve, over HTTP."""

from __future__ import annotations

import dataclasses
import math

from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.db import Database
from service.core.records import CurvePoint, PackResize, RunOutcome, RunTraining
from service.core.states import RunStatus
from service.core.work.claims import claim
from service.core.work.ownership import record_epoch
from tests.helpers import finish_claim, finish_with, new_sweep

SPACE = {"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4]}


def test_runs_are_listed_filtered_and_paged(client: TestClient, db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=2)
    taken = claim(db, "w", max_replicas=4) + claim(db, "w", max_replicas=4)
    done = next(c for c in taken if c.params["learning_rate"] == 1e-3)
    assert finish_claim(db, done, worker_id="w", final_loss=0.2)

    def get(**params: object) -> dict:  # type: ignore[type-arg]
        r = client.get(f"/v1/sweeps/{sid}/runs", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    every = get()
    assert (every["total"], every["limit"], every["offset"], len(every["items"])) == (6, 100, 0, 6)
    page = get(limit=2, offset=4)
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 4)
    assert page["items"] == every["items"][4:6]
    assert {i["config_id"] for i in get(status="completed")["items"]} == {done.config_id}
    assert get(run_class="converged", seed=1)["total"] == 1
    assert get(config_id=done.config_id)["total"] == 2
    ranged = get(param="learning_rate=5e-3..")
    assert ranged["total"] == 4 and all(i["params"]["learning_rate"] >= 5e-3 for i in ranged["items"])
    assert get(param=["learning_rate=0.001", "batch_size=4"])["total"] == 2


def test_bad_queries_and_unknown_sweeps(client: TestClient, db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=1)
    assert client.get(f"/v1/sweeps/{sid + 1}/runs").status_code == 404
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"seed": -1}, {"config_id": 0}):
        r = client.get(f"/v1/sweeps/{sid}/runs", params=params)
        assert r.status_code == 422 and next(iter(params)) in r.json()["detail"], params
    r = client.get(f"/v1/sweeps/{sid}/runs", params={"status": "finished"})
    assert r.status_code == 422 and "status" in r.json()["detail"]
    # A filter without "=" breaks the documented pattern of param=.
    r = client.get(f"/v1/sweeps/{sid}/runs", params={"param": "learning_rate"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "param" in r.json()["detail"]


def test_one_run_and_its_curve(client: TestClient, db: Database, settings: Settings) -> None:
    new_sweep(db, settings, space=SPACE, seeds=1)
    (c,) = claim(db, "w")
    run = c.runs[0].run_id
    points = [
        CurvePoint(0, 2.0, 0.25, None, None, None, 1e-3, None, 150.0, 3e4, 3.8e4),
        CurvePoint(1, math.inf, None, math.nan, None, None, 1e-3, 5.0),
    ]
    record_epoch(db, {c.config_id: c.trial_id}, [(run, p) for p in points])
    outcome = RunOutcome(run, RunStatus.NONFINITE, "diverged", ["nonfinite"], {"l0": 2.0}, 1, None, None)
    assert finish_with(db, c, [dataclasses.replace(outcome, step_losses=[[0, 2.0], [3, None]])])
    got = client.get(f"/v1/runs/{run}").json()
    assert (got["id"], got["config_id"], got["status"], got["run_class"]) == (
        run,
        c.config_id,
        "nonfinite",
        "diverged",
    )
    assert got["params"] == c.params and got["flags"] == ["nonfinite"] and got["final_loss"] is None
    curve = client.get(f"/v1/runs/{run}/curve").json()
    assert curve["run_id"] == run and curve["step_losses"] == [[0, 2.0], [3, None]]
    assert [p["loss"] for p in curve["points"]] == [2.0, None]  # the non-finite loss reads back as null
    assert curve["points"][1] == {
        "epoch": 1,
        "loss": None,
        "accuracy": None,
        "running_loss": None,
        "val_loss": None,
        "val_accuracy": None,
        "learning_rate": 1e-3,
        "grad_norm": 5.0,
        "sharpness": None,
        "preconditioned_sharpness": None,
        "stability_threshold": None,
    }
    # The sharpness of a sweep with record_sharpness reads back beside the other epoch values.
    first = curve["points"][0]
    assert (first["sharpness"], first["preconditioned_sharpness"], first["stability_threshold"]) == (
        150.0,
        3e4,
        3.8e4,
    )
    page = client.get(f"/runs/{run}")
    assert page.status_code == 200 and 'id="run-sharpness"' in page.text and '"compared"' in page.text
    assert client.get(f"/v1/runs/{run + 100}").status_code == 404
    assert client.get(f"/v1/runs/{run + 100}/curve").status_code == 404


def test_each_run_says_how_it_was_trained(client: TestClient, db: Database, settings: Settings) -> None:
    """Stored by the worker with the outcome; in the API record and on the run page."""
    new_sweep(db, settings, space=SPACE, seeds=2)
    (c,) = claim(db, "w")
    packed, alone = (slot.run_id for slot in c.runs)
    how = RunTraining(
        mode="pack",
        pack_size=16,
        resized=[PackResize(epoch=3, size=8)],
        compiled_function="compiled",
        compile_seconds=4.25,
        xla=False,
    )
    why = RunTraining(mode="single", fallback_reason="layer 'conv' (Conv2D) is not supported")
    base = RunOutcome(packed, RunStatus.COMPLETED, "converged", [], {}, 1, 0.1, 1.0)
    rep = dataclasses.replace
    outcomes = [rep(base, training=how), rep(base, run_id=alone, training=why)]
    assert finish_with(db, c, outcomes)
    got = client.get(f"/v1/runs/{packed}").json()["training"]
    assert got == {
        "mode": "pack",
        "pack_size": 16,
        "resized": [{"epoch": 3, "size": 8, "compiled": False}],
        "compiled_function": "compiled",
        "compile_seconds": 4.25,
        "xla": False,
        "fallback_reason": None,
    }
    listed = client.get(f"/v1/sweeps/{c.sweep_id}/runs").json()["items"]
    assert [i["training"]["mode"] for i in listed] == ["pack", "single"]
    page = client.get(f"/runs/{packed}").text
    assert "in a pack of 16, 8 after epoch 3; compiled in 4.2 s" in page
    page = client.get(f"/runs/{alone}").text
    assert "one replica at a time: layer &#39;conv&#39; (Conv2D) is not supported" in page
