"""Edge refinement rounds: when they are enqueued, what, and exactly once.

Runs are finished through the real work queue with chosen classes (no training):
lr below ``EDGE`` converges, above it diverges. SQLite file and PostgreSQL.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.core.db import Database
from service.core.proposals.refinement import maybe_refine
from service.core.records import RunOutcome
from service.core.repo.models import Config, Sweep
from service.core.states import RunStatus
from service.core.work.claims import claim
from service.core.work.finishing import finish_config, maybe_finish_sweep

EDGE = 0.05
GRID = [0.001, 0.01, 0.1, 1.0]


def _spec(rounds: int = 2, grid: list[float] = GRID, **extra: Any) -> dict[str, Any]:
    return {
        "name": "refine",
        "workload": {"preset": "least_squares", "params": {"n": 8, "d": 2}},
        "epochs": 3,
        "seeds": 2,
        "space": {"learning_rate": grid, "batch_size": [4, 8]},
        "refine_edge": {"rounds": rounds},
        **extra,
    }


def _finish_waiting(db: Database, edge: float = EDGE) -> int:
    n = 0
    while claims := claim(db, "w", max_replicas=2):
        for c in claims:
            diverged = c.params["learning_rate"] > edge
            outs = [
                RunOutcome(
                    run_id=run.run_id,
                    status=RunStatus.NONFINITE if diverged else RunStatus.COMPLETED,
                    run_class="diverged" if diverged else "converged",
                    flags=[],
                    metrics={"l0": 1.0},
                    epochs_run=3,
                    final_loss=None if diverged else 0.01,
                    final_accuracy=None,
                )
                for run in c.runs
            ]
            assert finish_config(
                db,
                config_id=c.config_id,
                trial_id=c.trial_id,
                outcomes=outs,
                value=0.0,
                intermediate=[],
                worker_id="w",
                train_seconds=0.0,
            )
            n += 1
    return n


def _configs(db: Database, sid: int) -> list[tuple[float, int, int, str]]:
    with db.transaction() as s:
        rows = s.execute(
            select(Config.params, Config.refine_round, Config.state).where(Config.sweep_id == sid)
        ).all()
    return sorted((p["learning_rate"], p["batch_size"], r, st) for p, r, st in rows)


def _round(db: Database, sid: int) -> int:
    with db.transaction() as s:
        sweep = s.get(Sweep, sid)
        assert sweep is not None
        return sweep.refine_round


def test_rounds_bisect_each_bracket_in_log_lr_until_done(client: TestClient, db: Database) -> None:
    sid = client.post("/v1/sweeps", json=_spec(rounds=2)).json()["id"]
    _finish_waiting(db)
    assert maybe_refine(db, sid)
    added = [c for c in _configs(db, sid) if c[2] == 1]
    mid = 0.0316228  # sqrt(0.01 * 0.1), six significant digits like a spec's grid
    assert added == [(mid, 4, 1, "waiting"), (mid, 8, 1, "waiting")]
    assert not maybe_refine(db, sid) and _round(db, sid) == 1  # pending work: no new round

    _finish_waiting(db)
    assert maybe_refine(db, sid)
    second = [c[0] for c in _configs(db, sid) if c[2] == 2]
    mid2 = float(f"{math.sqrt(mid * 0.1):.6g}")  # the edge is above mid: bisect [mid, 0.1]
    assert second == [mid2, mid2]
    _finish_waiting(db)
    assert not maybe_refine(db, sid)  # both rounds spent
    assert maybe_finish_sweep(db, sid) == "completed"
    edge = client.get(f"/v1/sweeps/{sid}/edge").json()
    assert edge["refinement"] == {"configs_added": 4, "runs_added": 8, "grid_configs": 8}
    for e in edge["edges"]:
        assert e["bracket"] == [mid, mid2]
        assert e["grid"]["bracket"] == [0.01, 0.1] and e["trials_added_by_refinement"] == 2
    study = client.get(f"/v1/sweeps/{sid}/configs", params={"limit": 100}).json()
    assert study["total"] == 12 and {t["state"] for t in study["items"]} == {"completed"}


def test_no_bracketed_edge_spends_the_rounds_so_the_sweep_finishes(client: TestClient, db: Database) -> None:
    sid = client.post("/v1/sweeps", json=_spec(rounds=3)).json()["id"]
    _finish_waiting(db, edge=10.0)  # every lr stable: the edge is censored above
    assert not maybe_refine(db, sid)
    assert _round(db, sid) == 3
    assert len(_configs(db, sid)) == 8
    assert maybe_finish_sweep(db, sid) == "completed"


def test_without_refine_edge_or_after_cancel_nothing_is_enqueued(client: TestClient, db: Database) -> None:
    plain = _spec()
    del plain["refine_edge"]
    sid = client.post("/v1/sweeps", json=plain).json()["id"]
    _finish_waiting(db)
    assert not maybe_refine(db, sid) and len(_configs(db, sid)) == 8

    other = client.post("/v1/sweeps", json=_spec(name="cancelled")).json()["id"]
    assert client.post(f"/v1/sweeps/{other}/cancel").status_code == 200
    assert not maybe_refine(db, other) and _round(db, other) == 0


def test_workers_finishing_together_enqueue_a_round_once(client: TestClient, db: Database) -> None:
    sid = client.post("/v1/sweeps", json=_spec(rounds=1)).json()["id"]
    _finish_waiting(db)
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def worker() -> None:
        barrier.wait()
        results.append(maybe_refine(db, sid))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    assert _round(db, sid) == 1
    assert [c[1] for c in _configs(db, sid) if c[2] == 1] == [4, 8]
