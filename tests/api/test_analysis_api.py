"""Analysis endpoints on sweeps whose outcomes are chosen by hand.

Runs are claimed and finished through the real queue (``claim`` and
``finish_config``), exactly as a worker stores them, but each seed's class and
metrics come from ``_outcome`` below instead of training, so every figure the
API reports can be worked out in the test. No TensorFlow. Runs on a SQLite
file and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.db import Database
from service.core.records import RunOutcome
from service.core.states import RunStatus
from service.core.work.claims import claim
from service.core.work.finishing import finish_config, maybe_finish_sweep
from tests.conftest import TINY_LSTM

LRS = [0.001, 0.01, 0.1]
SPEC: dict[str, Any] = {
    "name": "hand-built",
    # Room for the largest batch size (a batch over the training set is refused at submission).
    "workload": {**TINY_LSTM, "params": {**TINY_LSTM["params"], "n_train": 16}},
    "epochs": 5,
    # Crossed seeds: seed = 2 * init index + data index.
    "seeds": {"init": 2, "data": 2},
    "space": {
        "optimizer": ["adam"],
        "learning_rate": LRS,
        "batch_size": [4, 16],
        "beta_1": [0.5, 0.9],
        "beta_2": [0.99, 0.999],
    },
}
N_CONFIGS, N_SEEDS = 24, 4

Outcome = tuple[str, str]  # (status, run_class)


def _outcome(p: dict[str, Any], seed: int) -> Outcome:
    """The class each seed gets; the expectations below are worked out from this table."""
    init, data = divmod(seed, 2)
    lr, b = p["learning_rate"], p["batch_size"]
    if lr == 0.1:
        return "nonfinite", "diverged"
    if lr == 0.01 and b == 4:  # the init seed decides
        return ("completed", "converged") if init == 0 else ("nonfinite", "diverged")
    if lr == 0.01 and p["beta_1"] == 0.5:  # the data-order seed decides
        return "completed", "rises_after_min" if data == 1 else "converged"
    if lr == 0.01:
        return "completed", "noisy" if p["beta_2"] == 0.99 and data == 0 else "converged"
    if b == 4:
        return "completed", "stuck_at_chance" if init == 1 else "slow"
    return "completed", "converged"


def _final_loss(p: dict[str, Any], seed: int) -> float:
    return round(0.1 * p["learning_rate"] * 100 + 0.01 * seed + p["batch_size"] / 1000, 6)


def _finish_all(
    db: Database, outcome: Callable[[dict[str, Any], int], Outcome], limit: int | None = None
) -> int:
    """Claim and finish configurations as a worker would; returns how many."""
    done = 0
    while limit is None or done < limit:
        claims = claim(db, "hand-worker", max_replicas=N_SEEDS)
        if not claims:
            break
        for c in claims:
            outs = []
            for run in c.runs:
                status, run_class = outcome(c.params, run.seed)
                loss = None if status == "nonfinite" else _final_loss(c.params, run.seed)
                outs.append(
                    RunOutcome(
                        run_id=run.run_id,
                        status=RunStatus(status),
                        run_class=run_class,
                        flags=["regressing"] if run_class == "noisy" else [],
                        metrics={"l0": 1.8, "L_min": loss, "target_reached": run_class == "converged"},
                        epochs_run=5 if loss is not None else 2,
                        final_loss=loss,
                        final_accuracy=None if loss is None else 0.5,
                    )
                )
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
            done += 1
    maybe_finish_sweep(db, _sweep_id_of(db))
    return done


def _sweep_id_of(db: Database) -> int:
    from sqlalchemy import func, select

    from service.core.repo.models import Sweep

    with db.transaction() as s:
        return int(s.scalar(select(func.max(Sweep.id))) or 0)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


@pytest.fixture
def sweep(client: TestClient, db: Database) -> dict[str, Any]:
    created = client.post("/v1/sweeps", json=SPEC)
    assert created.status_code == 201, created.text
    assert _finish_all(db, _outcome) == N_CONFIGS
    body: dict[str, Any] = client.get(f"/v1/sweeps/{created.json()['id']}").json()
    assert body["state"] == "completed" and body["runs_done"] == N_CONFIGS * N_SEEDS
    return body


def _configs(client: TestClient, sid: int, **params: Any) -> dict[str, Any]:
    r = client.get(f"/v1/sweeps/{sid}/configs", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    return (params["learning_rate"], params["batch_size"], params["beta_1"], params["beta_2"])


# ------------------------------------------------------------------ /configs


def test_configs_aggregate_seeds_with_wilson_intervals(client: TestClient, sweep: dict[str, Any]) -> None:
    body = _configs(client, sweep["id"], limit=100)
    assert body["total"] == N_CONFIGS and len(body["items"]) == N_CONFIGS
    for item in body["items"]:
        p, s = item["params"], item["summary"]
        expected = [_outcome(p, seed)[1] for seed in range(N_SEEDS)]
        k = sum(c in ("converged", "slow", "noisy") for c in expected)
        assert s["n"] == N_SEEDS and s["successes"] == k, (p, s)
        assert s["success_rate"] == pytest.approx(k / N_SEEDS)
        assert {c: n for c, n in s["class_counts"].items() if n} == {
            c: expected.count(c) for c in set(expected)
        }
        assert s["wilson"] == pytest.approx(list(_wilson(k, N_SEEDS)), abs=1e-6)
        assert s["any_diverged"] == ("diverged" in expected)
        if p["learning_rate"] == 0.1:
            assert s["final_loss"]["median"] is None  # every seed went non-finite
        else:
            losses = [_final_loss(p, seed) for seed in range(N_SEEDS) if _outcome(p, seed)[0] == "completed"]
            assert s["final_loss"]["median"] == pytest.approx(statistics.median(losses))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"run_class": "diverged"}, 12),  # lr 0.1 (8) + lr 0.01 at batch 4 (4)
        ({"run_class": "stuck_at_chance"}, 4),
        ({"run_class": "rises_after_min"}, 2),
        ({"run_class": "noisy"}, 1),
        ({"min_success": 1}, 6),
        ({"max_success": 0}, 8),
        ({"min_success": 0.4, "max_success": 0.6}, 10),
        ({"run_class": "converged", "min_success": 0.5, "max_success": 0.5}, 6),
    ],
)
def test_configs_filter_by_class_and_success_rate(
    client: TestClient, sweep: dict[str, Any], query: dict[str, Any], expected: int
) -> None:
    body = _configs(client, sweep["id"], limit=100, **query)
    assert body["total"] == expected
    for item in body["items"]:
        s = item["summary"]
        if "run_class" in query:
            assert s["class_counts"][query["run_class"]] > 0
        assert query.get("min_success", 0) <= s["success_rate"] <= query.get("max_success", 1)


def test_configs_paging_and_bad_filters(client: TestClient, sweep: dict[str, Any]) -> None:
    sid = sweep["id"]
    first = _configs(client, sid, limit=10)
    second = _configs(client, sid, limit=10, offset=10)
    assert first["total"] == second["total"] == N_CONFIGS
    ids = [i["config_id"] for i in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 20
    for bad in ({"run_class": "exploded"}, {"min_success": 1.5}, {"limit": 0}):
        r = client.get(f"/v1/sweeps/{sid}/configs", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert next(iter(bad)) in r.text
    assert client.get("/v1/sweeps/999999/configs").status_code == 404


def test_config_detail_separates_init_and_data_seeds(client: TestClient, sweep: dict[str, Any]) -> None:
    sid = sweep["id"]
    items = {_key(i["params"]): i for i in _configs(client, sid, limit=100)["items"]}
    # lr 0.01, batch 4: the init seed decides; lr 0.01, batch 16, beta_1 0.5: the data seed decides.
    init_decides = items[(0.01, 4, 0.9, 0.999)]["config_id"]
    data_decides = items[(0.01, 16, 0.5, 0.999)]["config_id"]
    for cid, lucky, neutral in (
        (init_decides, "by_init_seed", "by_data_seed"),
        (data_decides, "by_data_seed", "by_init_seed"),
    ):
        r = client.get(f"/v1/sweeps/{sid}/configs/{cid}")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["config_id"] == cid and d["summary"]["n"] == N_SEEDS
        assert len(d[lucky]) == 2 and len(d[neutral]) == 2
        assert sorted(g["success_rate"] for g in d[lucky].values()) == [0.0, 1.0]
        assert [g["success_rate"] for g in d[neutral].values()] == [0.5, 0.5]
        assert all(g["n"] == 2 for g in d[lucky].values())
    missing = client.get(f"/v1/sweeps/{sid}/configs/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]


def test_configs_follow_new_results_as_they_arrive(client: TestClient, db: Database) -> None:
    """The per-sweep cache must not serve a stale aggregate once more runs finish."""
    sid = client.post("/v1/sweeps", json=SPEC).json()["id"]

    def summarised() -> int:
        body = _configs(client, sid)
        assert body["total"] == N_CONFIGS  # every configuration is listed, finished or not
        return sum(item["summary"] is not None for item in body["items"])

    assert summarised() == 0
    assert _configs(client, sid, min_success=0)["total"] == 0  # outcome filters need finished seeds
    assert client.get(f"/v1/sweeps/{sid}/edge").json()["edges"] == []
    assert client.get(f"/v1/sweeps/{sid}/regions").json()["cells"] == []
    _finish_all(db, _outcome, limit=5)
    assert summarised() == 5 and _configs(client, sid, min_success=0)["total"] == 5
    _finish_all(db, _outcome)
    assert summarised() == N_CONFIGS


# ------------------------------------------------------------------ /regions


def _regions(client: TestClient, sid: int, **params: Any) -> dict[str, Any]:
    r = client.get(f"/v1/sweeps/{sid}/regions", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _cell(region: dict[str, Any], x: Any, y: Any) -> dict[str, Any]:
    cell: dict[str, Any] = region["cells"][region["y_values"].index(y)][region["x_values"].index(x)]
    return cell


def test_regions_default_lr_by_batch_pools_the_betas(client: TestClient, sweep: dict[str, Any]) -> None:
    reg = _regions(client, sweep["id"])
    assert (reg["x"], reg["y"]) == ("learning_rate", "batch_size")
    assert reg["x_values"] == LRS and reg["y_values"] == [4, 16]
    assert set(reg["pooled_over"]) == {"beta_1", "beta_2"}
    expected = {  # (lr, batch): (successes, n) over 4 configs x 4 seeds
        (0.001, 4): (8, 16),
        (0.01, 4): (8, 16),
        (0.1, 4): (0, 16),
        (0.001, 16): (16, 16),
        (0.01, 16): (12, 16),  # beta_1 0.5 loses its data-seed-1 runs
        (0.1, 16): (0, 16),
    }
    for (lr, b), (k, n) in expected.items():
        c = _cell(reg, lr, b)
        assert (c["successes"], c["n"]) == (k, n), (lr, b, c)
        assert c["wilson"] == pytest.approx(list(_wilson(k, n)), abs=1e-6)
        assert len(c["config_ids"]) == 4
    assert _cell(reg, 0.1, 4)["dominant_class"] == "diverged" and _cell(reg, 0.1, 4)["any_diverged"]
    # The edge is drawn on the map: one per batch size and beta slice.
    assert len(reg["edges"]) == 8


def test_regions_slice_by_query_parameters(client: TestClient, sweep: dict[str, Any]) -> None:
    sid = sweep["id"]
    half = _regions(client, sid, beta_1=0.5)
    assert half["fixed"] == {"beta_1": 0.5} and half["pooled_over"] == ["beta_2"]
    assert _cell(half, 0.01, 16)["success_rate"] == 0.5
    full = _regions(client, sid, beta_1="0.9", beta_2="0.999")  # text matched to the sweep's numbers
    assert _cell(full, 0.01, 16)["success_rate"] == 1.0 and _cell(full, 0.01, 16)["n"] == 4
    assert {tuple(sorted(e["group"].items())) for e in full["edges"]} == {
        (("batch_size", b), ("beta_1", 0.9), ("beta_2", 0.999), ("optimizer", "adam")) for b in (4, 16)
    }


@pytest.mark.parametrize(
    ("params", "must_mention"),
    [
        ({"x": "momentum"}, ["momentum", "batch_size", "beta_1", "learning_rate"]),
        ({"y": "nope"}, ["nope", "beta_2"]),
        ({"rho": "0.9"}, ["rho", "learning_rate"]),
        ({"beta_1": "0.7"}, ["0.7", "0.5", "0.9"]),
        ({"x": "batch_size", "y": "batch_size"}, ["different"]),
    ],
)
def test_regions_bad_dimensions_say_what_is_valid(
    client: TestClient, sweep: dict[str, Any], params: dict[str, str], must_mention: list[str]
) -> None:
    r = client.get(f"/v1/sweeps/{sweep['id']}/regions", params=params)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    for word in must_mention:
        assert word in detail, (word, detail)


@pytest.mark.parametrize("path", ["regions", "heatmap"])
def test_a_sweep_without_results_refuses_an_axis_that_is_no_dimension(client: TestClient, path: str) -> None:
    """Found by schemathesis: the document lists the axes (an enum), but a queued sweep's empty map
    took any name. Before results, only the name can be checked; after, the 422 lists the swept ones."""
    created = client.post("/v1/sweeps", json=SPEC)
    assert created.status_code == 201, created.text
    url = f"/v1/sweeps/{created.json()['id']}/{path}"
    bad = client.get(url, params={"y": "AAA"})
    assert bad.status_code == 422 and "'AAA' is not a dimension" in bad.json()["detail"], bad.text
    assert client.get(url, params={"x": "momentum"}).status_code == 200  # a dimension: an empty map


def test_beta_plane_has_the_reference_curve(client: TestClient, sweep: dict[str, Any]) -> None:
    plane = _regions(client, sweep["id"], x="beta_1", y="beta_2", learning_rate=0.01, batch_size=16)
    assert plane["x_values"] == [0.5, 0.9] and plane["y_values"] == [0.99, 0.999]
    assert _cell(plane, 0.5, 0.99)["success_rate"] == 0.5
    assert _cell(plane, 0.9, 0.99)["success_rate"] == 1.0
    assert _cell(plane, 0.9, 0.99)["class_mix"]["noisy"] == 2  # runs, not configurations
    curve = plane["reference_curve"]
    assert "sqrt" in curve["label"] and len(curve["x"]) == len(curve["y"]) > 1
    for b1, b2 in zip(curve["x"], curve["y"], strict=True):
        assert b1 == pytest.approx(math.sqrt(b2))
    assert plane["below_curve"] == [[True, True], [True, True]]  # 0.9 < sqrt(0.99)


# ------------------------------------------------------------------ /edge


def test_edge_per_batch_size_and_slice(client: TestClient, sweep: dict[str, Any]) -> None:
    r = client.get(f"/v1/sweeps/{sweep['id']}/edge")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["edges"]) == 8
    for e in body["edges"]:
        # batch 4 breaks at lr 0.01 (an init seed diverges), batch 16 at 0.1.
        lo, hi = (0.001, 0.01) if e["group"]["batch_size"] == 4 else (0.01, 0.1)
        assert e["bracket"] == [lo, hi] and e["censored"] is None
        assert e["edge"] == pytest.approx(math.sqrt(lo * hi))
        assert e["bracket_width"] == pytest.approx(9.0)
        assert e["trials_added_by_refinement"] == 0
    assert body["refine_round"] == 0 and body["refine_rounds_requested"] == 0
    assert body["refinement"]["configs_added"] == 0 and body["refinement"]["runs_added"] == 0
    (fit,) = body["scaling"]
    assert fit["optimizer"] == "adam" and fit["expected"] == 0.5
    assert fit["slope"] == pytest.approx(math.log(10) / math.log(4))  # edge x10 for batch x4
    assert len(body["sensitivity"]) == 8


# ------------------------------------------------------------------ /report


def test_report_json_and_markdown(client: TestClient, sweep: dict[str, Any]) -> None:
    sid = sweep["id"]
    r = client.get(f"/v1/sweeps/{sid}/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    rep = r.json()
    assert rep["sweep_id"] == sid and rep["state"] == "completed"
    assert rep["headline"] and rep["stable_region"] and rep["failures"]
    assert any(f.get("run_class") == "diverged" or "diverged" in str(f) for f in rep["failures"])
    md = client.get(f"/v1/sweeps/{sid}/report", headers={"Accept": "text/markdown"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith(f"# Diagnosis of sweep {sid}: hand-built")
    assert rep["headline"].split(".")[0][:40] in md.text
    # A browser's Accept header lists several types; JSON unless Markdown is asked for.
    assert client.get(f"/v1/sweeps/{sid}/report", headers={"Accept": "*/*"}).json()["sweep_id"] == sid


# ------------------------------------------------------------------ /export.csv and /runs


def test_export_csv_one_row_per_run(client: TestClient, sweep: dict[str, Any]) -> None:
    r = client.get(f"/v1/sweeps/{sweep['id']}/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == N_CONFIGS * N_SEEDS
    header = set(rows[0])
    assert {"run_id", "config_id", "learning_rate", "batch_size", "beta_1", "beta_2", "optimizer"} <= header
    assert {"seed", "init_seed", "data_seed", "status", "run_class", "final_loss", "l0", "L_min"} <= header
    assert len({r["run_id"] for r in rows}) == len(rows)
    for row in rows:
        params = {
            "learning_rate": float(row["learning_rate"]),
            "batch_size": int(row["batch_size"]),
            "beta_1": float(row["beta_1"]),
            "beta_2": float(row["beta_2"]),
        }
        status, run_class = _outcome(params, int(row["seed"]))
        assert (row["status"], row["run_class"]) == (status, run_class)
        if status == "nonfinite":
            assert row["final_loss"] == ""
        else:
            assert float(row["final_loss"]) == pytest.approx(_final_loss(params, int(row["seed"])))
        assert row["l0"] == "1.8"


def test_runs_filter_by_class(client: TestClient, sweep: dict[str, Any]) -> None:
    sid = sweep["id"]
    expected = {"stuck_at_chance": 8, "diverged": 40, "rises_after_min": 4, "noisy": 2, "slow": 8}
    for run_class, n in expected.items():
        r = client.get(f"/v1/sweeps/{sid}/runs", params={"run_class": run_class, "limit": 100})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == n, run_class
        assert {i["run_class"] for i in body["items"]} == {run_class}
    bad = client.get(f"/v1/sweeps/{sid}/runs", params={"run_class": "wobbly"})
    assert bad.status_code == 422 and "run_class" in bad.text


# ------------------------------------------------------------------ stored reports of finished sweeps


def test_finished_sweep_serves_its_stored_report_until_it_no_longer_matches(
    client: TestClient, db: Database, sweep: dict[str, Any]
) -> None:
    from service.core.repo.models import SweepReport
    from service.core.results.reports import store_report

    sid = sweep["id"]
    computed = client.get(f"/v1/sweeps/{sid}/report").json()
    with db.transaction() as s:
        store_report(s, sweep_id=sid)
    with db.transaction() as s:
        row = s.get(SweepReport, sid)
        assert row is not None and row.report == computed and row.runs_done == sweep["runs_done"]
        # Mark the stored copy so the test can tell which one the API served.
        row.report = {**row.report, "headline": "stored copy"}
        row.markdown = "# stored copy"
        # The edge's schema has no free-form field: mark one it has with a value only this copy holds.
        row.edge = {**row.edge, "refine_rounds_requested": 12345}
    assert client.get(f"/v1/sweeps/{sid}/report").json()["headline"] == "stored copy"
    assert client.get(f"/v1/sweeps/{sid}/report", headers={"Accept": "text/markdown"}).text == "# stored copy"
    assert client.get(f"/v1/sweeps/{sid}/edge").json()["refine_rounds_requested"] == 12345
    with db.transaction() as s:
        row = s.get(SweepReport, sid)
        assert row is not None
        row.runs_done -= 1  # no longer describes the sweep: computed afresh
    assert client.get(f"/v1/sweeps/{sid}/report").json() == computed
    assert client.delete(f"/v1/sweeps/{sid}").status_code == 204
    with db.transaction() as s:
        assert s.get(SweepReport, sid) is None


# ------------------------------------------------------------------ pinned output


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("path", "accept", "pinned"),
    [
        ("report", "application/json", "hand_built_report.json"),
        ("report", "text/markdown", "hand_built_report.md"),
        ("edge", "application/json", "hand_built_edge.json"),
        ("export.csv", "text/csv", "hand_built_export.csv"),
    ],
)
def test_analysis_output_is_byte_for_byte_the_pinned_copy(
    client: TestClient, sweep: dict[str, Any], path: str, accept: str, pinned: str
) -> None:
    """What readers get for a fixed sweep never changes by accident (a refactoring keeps every byte).

    After a deliberate change, rewrite the copies with ``SWEEPS_REGENERATE_GOLDEN=1`` and review the diff.
    """
    r = client.get(f"/v1/sweeps/{sweep['id']}/{path}", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    if os.environ.get("SWEEPS_REGENERATE_GOLDEN"):
        (GOLDEN / pinned).write_bytes(r.content)
    assert r.content == (GOLDEN / pinned).read_bytes()
