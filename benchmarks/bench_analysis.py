"""Analysis endpoints on a 10,000-run sweep: milliseconds per request, cold and warm.

Target (issue 3): the region and report endpoints answer in under 300 ms for
a sweep of 10,000 runs. This prints the figure per endpoint and its ratio to
that budget; it never asserts one.

The sweep is created through ``service.core.sweeps.create_sweep`` (our rows
and Optuna's WAITING trials, enqueued in bulk like any grid: 10 lr x 5 batch
sizes x 4 beta_1 x 5 beta_2 = 1,000 configurations x 10 seeds), then every
run is written finished in bulk with a synthetic outcome (an edge of
stability that grows with batch size and shrinks at low beta_1, seed luck
near it, the classifier's full metrics dict), the way ``finish_config`` would
leave them. No training.

Requests go through the real ASGI app (FastAPI TestClient). "cold" clears the
per-sweep analysis cache first, so it includes loading every run from the
database and recomputing; "warm" is the same request answered from the cache
(a dashboard polling a finished sweep).

Usage:
    python benchmarks/bench_analysis.py                       # SQLite file in a temp dir
    python benchmarks/bench_analysis.py --postgres URL        # also on PostgreSQL (an admin URL;
                                                              # a throwaway database is created)
    python benchmarks/bench_analysis.py --seeds 5 --repeat 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.core.states import ConfigState, RunStatus, SweepState  # noqa: E402

BUDGET_MS = 300.0
SPACE = {
    "optimizer": ["adam"],
    "learning_rate": [float(f"{x:.3g}") for x in np.geomspace(1e-4, 1e-1, 10)],
    "batch_size": [2, 4, 8, 16, 32],
    "beta_1": [0.0, 0.5, 0.9, 0.95],
    "beta_2": [0.9, 0.95, 0.99, 0.995, 0.999],
}


def _out(msg: str = "") -> None:
    print(msg, flush=True)  # a benchmark script's console output


def _outcome(params: dict[str, Any], seed: int, rng: np.random.Generator) -> tuple[str, str, float | None]:
    """(status, run_class, final_loss): stable below an edge ~ sqrt(batch), seed luck near it."""
    edge = 3e-3 * math.sqrt(params["batch_size"]) * (0.5 if params["beta_1"] < 0.6 else 1.0)
    r = math.log10(params["learning_rate"] / edge) + 0.25 * rng.standard_normal()
    if r > 0.3:
        return RunStatus.NONFINITE, "diverged", None
    if r > 0.0:
        return (
            RunStatus.COMPLETED,
            str(rng.choice(["rises_after_min", "noisy", "diverged"])),
            1.0 + rng.random(),
        )
    if r < -1.5:
        return RunStatus.COMPLETED, "slow", 0.8 + 0.1 * rng.random()
    if params["beta_2"] < 0.95 and rng.random() < 0.3:
        return RunStatus.COMPLETED, "stuck_at_chance", 1.79
    return RunStatus.COMPLETED, "converged", 0.05 + 0.05 * rng.random()


def _metrics(loss: float | None, rng: np.random.Generator) -> dict[str, Any]:
    """The classifier's metrics dict, same keys and value types (what a real row stores)."""
    return {
        "l0": 1.79,
        "l_chance": 1.79,
        "L_min": None if loss is None else loss * 0.9,
        "t_min": int(rng.integers(5, 30)),
        "L_end": loss,
        "rebound": float(rng.random() * 0.2),
        "late_increase_frac": float(rng.random() * 0.5),
        "late_detrended_std": float(rng.random() * 0.05),
        "late_log_slope": float(-rng.random()),
        "majority_accuracy": 1 / 6,
        "final_accuracy": None if loss is None else float(rng.random()),
        "target_reached": loss is not None and loss < 0.2,
        "epochs_to_target": None if loss is None or loss >= 0.2 else int(rng.integers(3, 30)),
        "val_rebound": None,
        # The fluctuation measures (service.core.analysis.fluctuation), as the worker stores them.
        "fluctuation": float(0.02 + 0.2 * rng.random()),
        "jump_p90": float(1.0 + rng.random()),
        "running_fluctuation": float(0.01 + 0.1 * rng.random()),
        "spikes": int(rng.integers(0, 4)),
        "largest_spike": float(2.0 + 3.0 * rng.random()),
        "unrecovered_spike": None,
        "step_loss_var": None,
        "step_log_std": None,
    }


def build(url: str, seeds: int) -> tuple[Any, Any, int, float]:
    from sqlalchemy import insert, select, update

    from service.core.config import Settings
    from service.core.db import Database
    from service.core.migrate import upgrade
    from service.core.repo.analysis_rows import analysis_columns
    from service.core.repo.models import Config, Run, Sweep
    from service.core.spec import seed_pairs
    from service.core.sweeps import create_sweep, parse_spec
    from service.core.timeutil import utcnow

    upgrade(url)
    settings = Settings(database_url=url, workers=0)
    db = Database(url)
    spec = parse_spec(
        {
            "name": "bench-analysis",
            # n_train: at least the largest batch size (a larger batch is refused).
            "workload": {"preset": "sensor_lstm", "params": {"n_train": 32, "timesteps": 8}},
            "epochs": 30,
            "seeds": seeds,
            "space": SPACE,
        }
    )
    t0 = time.perf_counter()
    sweep, _ = create_sweep(db, settings, spec)
    pairs = seed_pairs(seeds)
    rng = np.random.default_rng(0)
    now = utcnow()
    with db.transaction() as s:
        configs = s.execute(
            select(Config.id, Config.trial_id, Config.params).where(Config.sweep_id == sweep.id)
        ).all()
        rows = []
        for cid, tid, params in configs:
            for seed, init_seed, data_seed in pairs:
                status, run_class, loss = _outcome(params, seed, rng)
                rows.append(
                    {
                        "sweep_id": sweep.id,
                        "config_id": cid,
                        "trial_id": tid,
                        "seed": seed,
                        "init_seed": init_seed,
                        "data_seed": data_seed,
                        "status": status,
                        "run_class": run_class,
                        "flags": ["regressing"] if run_class == "noisy" else [],
                        "metrics": (metrics := _metrics(loss, rng)),
                        **analysis_columns(metrics),  # as runs.store_outcome writes them
                        "epochs_run": 30 if loss is not None else int(rng.integers(2, 30)),
                        "final_loss": loss,
                        "final_accuracy": None if loss is None else float(rng.random()),
                        "worker_id": "bench",
                        "started_at": now,
                        "finished_at": now,
                    }
                )
        for i in range(0, len(rows), 2000):
            s.execute(insert(Run), rows[i : i + 2000])
        s.execute(
            update(Config)
            .where(Config.sweep_id == sweep.id)
            .values(state=ConfigState.COMPLETED, finished_at=now)
        )
        s.execute(
            update(Sweep).where(Sweep.id == sweep.id).values(state=SweepState.COMPLETED, finished_at=now)
        )
    return settings, db, sweep.id, time.perf_counter() - t0


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def bench(label: str, url: str, seeds: int, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.api.heap import freeze_startup_objects
    from service.core import tokens
    from service.core.repo.analysis_rows import analysis_rows
    from service.core.results.reports import store_report
    from service.core.results.sweep_data import build_data

    settings, db, sid, fill_s = build(url, seeds)
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="bench")
        n_runs = len(analysis_rows(s, sweep_id=sid))
    _out(f"\n== {label}: sweep {sid}, {n_runs} runs, created and filled in {fill_s:.1f} s")
    some_config = None
    app = create_app(settings, db)
    freeze_startup_objects()  # as `sweeps serve` does before it takes requests
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        items = client.get(f"/v1/sweeps/{sid}/configs", params={"limit": 1}).json()["items"]
        some_config = items[0]["config_id"]
        endpoints: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
            ("regions lr x batch (pooled)", "/regions", {}, {}),
            ("regions lr x batch, beta slice", "/regions", {"beta_1": "0.9", "beta_2": "0.999"}, {}),
            (
                "regions beta plane",
                "/regions",
                {"x": "beta_1", "y": "beta_2", "learning_rate": "0.001", "batch_size": "8"},
                {},
            ),
            ("edge", "/edge", {}, {}),
            ("report (JSON)", "/report", {}, {}),
            ("report (Markdown)", "/report", {}, {"Accept": "text/markdown"}),
            ("configs (first 500)", "/configs", {}, {}),
            (
                "configs ?run_class=diverged&max_success=0.5",
                "/configs",
                {"run_class": "diverged", "max_success": 0.5},
                {},
            ),
            ("configs/{id}", f"/configs/{some_config}", {}, {}),
            ("export.csv (all runs)", "/export.csv", {}, {}),
        ]
        _out(
            f"{'endpoint':48s} {'cold ms':>9s} {'warm ms':>9s} {'cold/300ms':>10s} {'bytes':>10s}"
            f" {'cold max':>9s}"
        )
        for name, path, params, headers in endpoints:
            url_path = f"/v1/sweeps/{sid}{path}"
            cold, warm = [], []
            size = 0

            def request(u: str = url_path, p: dict[str, Any] = params, h: dict[str, str] = headers) -> Any:
                return client.get(u, params=p, headers=h)

            for _ in range(repeat):
                db.analysis_cache.clear()  # cold means nothing cached
                cold.append(_time(request))
                r = request()
                assert r.status_code == 200, (name, r.status_code, r.text[:300])
                size = len(r.content)
                warm.append(_time(request))
            c, w = statistics.median(cold), statistics.median(warm)
            # The slowest cold request too: a full collection of the cyclic GC lands in some.
            _out(f"{name:48s} {c:9.1f} {w:9.1f} {c / BUDGET_MS:10.2f} {size:10d} {max(cold):9.1f}")
        # A finished sweep's edge and report are stored once by the worker that
        # finishes it; readers then skip the analysis (nothing else cached).
        with db.transaction() as s:
            store_report(s, sweep_id=sid)
        for name, path, headers in (
            ("edge (finished sweep, stored)", "/edge", {}),
            ("report JSON (finished sweep, stored)", "/report", {}),
            ("report Markdown (finished sweep, stored)", "/report", {"Accept": "text/markdown"}),
        ):
            times = []
            for _ in range(repeat):
                db.analysis_cache.clear()  # cold means nothing cached in memory
                times.append(_time(lambda u=f"/v1/sweeps/{sid}{path}", h=headers: client.get(u, headers=h)))
            c = statistics.median(times)
            _out(f"{name:48s} {c:9.1f} {'':>9s} {c / BUDGET_MS:10.2f}")
        # Where a cold request spends its time: loading rows vs analysis.
        with db.transaction() as s:
            from service.core.repo import sweeps as sweeps_repo

            t_load = _time(lambda: analysis_rows(s, sweep_id=sid))
            rows = analysis_rows(s, sweep_id=sid)
            rec = sweeps_repo.get_sweep(s, sweep_id=sid)
        t_build = _time(lambda: build_data(rec, rows))
        data = build_data(rec, rows)
        t_edges = _time(data.edges)
        t_fits = _time(data.fits)
        t_report = _time(data.report)
        _out(
            f"breakdown (ms): load rows {t_load:.0f}, per-config summaries {t_build:.0f}, "
            f"edges {t_edges:.0f}, scaling fit + bootstrap {t_fits:.0f}, diagnosis {t_report:.0f}"
        )
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="seeds per configuration (1,000 configurations)")
    ap.add_argument("--repeat", type=int, default=5, help="requests per endpoint; medians are printed")
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server to also run on")
    args = ap.parse_args()
    import logging

    logging.getLogger("optuna").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.seeds, args.repeat)
    if args.postgres:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"bench_analysis_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            bench("PostgreSQL", url, args.seeds, args.repeat)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    _out(
        f"\nbudget: {BUDGET_MS:.0f} ms per region/report request on a 10,000-run sweep "
        "(cold = nothing cached)"
    )


if __name__ == "__main__":
    main()
