"""Fluctuation through the API, on a sweep whose per-run fluctuation is chosen by hand.

Runs are claimed and finished through the real queue as a worker stores them;
each seed's fluctuation follows sigma = 0.4 (b / 2)^-0.5 (lr / 1e-3)^0.1 times a
seed jitter, so the exponents the service fits can be worked out here. No TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.db import Database
from service.core.records import RunOutcome
from service.core.states import RunStatus
from service.core.work.claims import claim
from service.core.work.finishing import finish_config, maybe_finish_sweep
from tests.conftest import TINY_LSTM

BATCHES = [2, 8, 32]
LRS = [0.001, 0.01]
SPEC: dict[str, Any] = {
    "name": "fluctuating",
    # Room for the largest batch size (a batch over the training set is refused at submission).
    "workload": {**TINY_LSTM, "params": {**TINY_LSTM["params"], "n_train": 32}},
    "epochs": 5,
    "seeds": {"init": 2, "data": 2},
    "space": {"optimizer": ["rmsprop"], "learning_rate": LRS, "batch_size": BATCHES},
}
N_SEEDS = 4


def sigma(p: dict[str, Any], seed: int) -> float:
    jitter = 1.0 + 0.05 * (seed - 1.5)
    return 0.4 * (p["batch_size"] / 2) ** -0.5 * (p["learning_rate"] / 1e-3) ** 0.1 * jitter


def metrics(p: dict[str, Any], seed: int) -> dict[str, Any]:
    s = sigma(p, seed)
    return {
        "l0": 1.8,
        "fluctuation": s,
        "jump_p90": math.exp(2.33 * s),
        "running_fluctuation": 0.25 * s,
        "spikes": 3 if p["batch_size"] == 2 else 0,
        "largest_spike": 3.5 if p["batch_size"] == 2 else None,
        "target_reached": False,
    }


def finish_all(db: Database) -> None:
    while claims := claim(db, "hand-worker", max_replicas=N_SEEDS):
        for c in claims:
            outs = [
                RunOutcome(
                    run_id=run.run_id,
                    status=RunStatus.COMPLETED,
                    run_class="noisy",
                    flags=["spikes"] if c.params["batch_size"] == 2 else [],
                    metrics=metrics(c.params, run.seed),
                    epochs_run=5,
                    final_loss=1.0,
                    final_accuracy=0.5,
                )
                for run in c.runs
            ]
            assert finish_config(
                db,
                config_id=c.config_id,
                trial_id=c.trial_id,
                outcomes=outs,
                value=1.0,
                intermediate=[(0, 1.8), (5, 1.0)],
                worker_id="hand-worker",
                train_seconds=0.1,
            )
    from sqlalchemy import func, select

    from service.core.repo.models import Sweep

    with db.transaction() as s:
        maybe_finish_sweep(db, int(s.scalar(select(func.max(Sweep.id))) or 0))


@pytest.fixture
def sweep_id(client: TestClient, db: Database) -> int:
    created = client.post("/v1/sweeps", json=SPEC)
    assert created.status_code == 201, created.text
    finish_all(db)
    sid: int = created.json()["id"]
    return sid


def test_configs_carry_fluctuation_median_and_iqr(client: TestClient, sweep_id: int) -> None:
    body = client.get(f"/v1/sweeps/{sweep_id}/configs").json()
    items = body["items"] if isinstance(body, dict) else body
    assert len(items) == len(LRS) * len(BATCHES)
    for item in items:
        p, fl = item["params"], item["summary"]["fluctuation"]
        expected = sorted(sigma(p, s) for s in range(N_SEEDS))
        assert fl["fluctuation"]["median"] == pytest.approx((expected[1] + expected[2]) / 2)
        assert fl["fluctuation"]["iqr"] > 0
        assert fl["running_fluctuation"]["median"] == pytest.approx(0.25 * fl["fluctuation"]["median"])
        assert fl["spikes"]["median"] == (3 if p["batch_size"] == 2 else 0)


def test_regions_coloured_by_fluctuation(client: TestClient, sweep_id: int) -> None:
    r = client.get(f"/v1/sweeps/{sweep_id}/regions", params={"metric": "fluctuation"})
    assert r.status_code == 200, r.text
    reg = r.json()
    assert reg["metric"] == "fluctuation" and reg["y_values"] == BATCHES
    for iy, b in enumerate(BATCHES):
        for ix, lr in enumerate(LRS):
            cell = reg["cells"][iy][ix]
            want = sorted(sigma({"batch_size": b, "learning_rate": lr}, s) for s in range(N_SEEDS))
            assert cell["value"] == pytest.approx((want[1] + want[2]) / 2)
            assert cell["fluctuation"]["fluctuation"]["iqr"] == pytest.approx(
                cell["fluctuation"]["fluctuation"]["q75"] - cell["fluctuation"]["fluctuation"]["q25"]
            )
    success = client.get(f"/v1/sweeps/{sweep_id}/regions").json()
    assert success["metric"] == "success" and success["cells"][0][0]["value"] == 1.0


def test_unknown_region_metric_is_a_422_listing_the_valid_ones(client: TestClient, sweep_id: int) -> None:
    r = client.get(f"/v1/sweeps/{sweep_id}/regions", params={"metric": "wobble"})
    assert r.status_code == 422, r.text
    for name in ("success", "fluctuation", "final_loss"):
        assert name in r.text


def test_report_answers_question_one_with_batch_size(client: TestClient, sweep_id: int) -> None:
    rep = client.get(f"/v1/sweeps/{sweep_id}/report").json()
    # Every seed trained (noisy), but the headline never says "stable" alone.
    assert "stable but noisy (loss jumps of ~" in rep["headline"]
    assert "between epochs at batch 2, ~" in rep["headline"] and "at batch 32)" in rep["headline"]
    fl = rep["fluctuation"]
    jumps = dict((b, j) for b, j in fl["jump_by_batch_size"])
    assert jumps[2] > jumps[8] > jumps[32]
    fits = [f for f in fl["fits"] if f["along"] == "batch_size"]
    assert len(fits) == len(LRS)
    for f in fits:
        assert f["slope"] == pytest.approx(-0.5, abs=0.02) and f["expected"] == -0.5
        assert f["ci"][0] <= -0.5 <= f["ci"][1]
    assert fl["effects"][0]["dim"] == "batch_size" and fl["effects"][0]["fold"] == pytest.approx(
        4.0, rel=0.05
    )
    assert fl["running_ratio"] == pytest.approx(0.25)
    answers = {a["key"]: a for a in rep["answers"]}
    assert set(answers) == {"fluctuation", "rises", "seed_luck"}
    one = answers["fluctuation"]["answer"]
    assert "Batch size moves fluctuation most" in one and "larger batch" in one
    assert answers["fluctuation"]["missing"] is None
    assert "No run rose after its minimum" in answers["rises"]["answer"]
    assert "beta_1" in answers["rises"]["missing"]


def test_unbracketed_edge_is_censored_in_json_and_markdown(client: TestClient, sweep_id: int) -> None:
    edges = client.get(f"/v1/sweeps/{sweep_id}/edge").json()["edges"]
    assert edges and all(e["edge"] is None and e["censored"] == "above" and e["bound"] == 0.01 for e in edges)
    rep = client.get(f"/v1/sweeps/{sweep_id}/report").json()
    assert all(s["edge"] is None and s["bound"] == 0.01 for s in rep["stable_region"])
    md = client.get(f"/v1/sweeps/{sweep_id}/report", headers={"Accept": "text/markdown"}).text
    assert "the edge is above 0.01, the largest tried" in md
    assert "## The three questions" in md and "Is it normal that my loss fluctuates" in md


def test_flags_and_target_metrics_are_documented_in_the_schema(client: TestClient) -> None:
    props = client.get("/openapi.json").json()["components"]["schemas"]["RunRecord"]["properties"]
    for flag in ("regressing", "plateaued", "spikes", "overfitting", "nonfinite"):
        assert f"`{flag}`" in props["flags"]["description"]
    for metric in ("target_reached", "epochs_to_target", "fluctuation", "jump_p90", "running_fluctuation"):
        assert f"`{metric}`" in props["metrics"]["description"]


def test_dashboard_json_draws_fluctuation_map_and_scaling(client: TestClient, sweep_id: int) -> None:
    heat = client.get(f"/v1/sweeps/{sweep_id}/heatmap", params={"metric": "fluctuation"}).json()
    assert heat["metric"] == "fluctuation"
    assert all(
        c["value"] is not None and "jump_p90" in c["fluctuation"] for row in heat["cells"] for c in row
    )
    assert all(e["edge"] is None and e["bound"] == 0.01 for e in heat["edges"])
    fl = client.get(f"/v1/sweeps/{sweep_id}/plots").json()["fluctuation"]
    assert fl["measured"] and [s["group"]["learning_rate"] for s in fl["series"]] == LRS
    for s in fl["series"]:
        assert s["x"] == BATCHES and s["slope"] == pytest.approx(-0.5, abs=0.02)
        fitted = [math.exp(s["intercept"]) * b ** s["slope"] for b in BATCHES]
        assert fitted == pytest.approx(s["median"], rel=0.05)


def test_censored_edge_is_no_number_in_the_dashboard_json(client: TestClient, sweep_id: int) -> None:
    edges = client.get(f"/v1/sweeps/{sweep_id}/plots").json()["edge"]["edges"]
    assert edges and all(e["edge"] is None and e["censored"] == "above" and e["lo"] == 0.01 for e in edges)
