"""Seconds to accept a 10,000-configuration grid through POST /v1/sweeps.

Accepting a grid means validating the spec, creating the Optuna study and
enqueuing every configuration as a WAITING trial plus our config row, in
bulk, in one transaction. This prints the time of the whole request through
the real ASGI app (FastAPI TestClient), on a SQLite file and optionally on
PostgreSQL, and configurations per second. It never asserts a figure.

Usage:
    python benchmarks/bench_enqueue.py
    python benchmarks/bench_enqueue.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    python benchmarks/bench_enqueue.py --repeat 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _out(msg: str = "") -> None:
    print(msg, flush=True)  # a benchmark script's console output


def spec(i: int) -> dict[str, Any]:
    """10 x 10 x 10 x 10 = 10,000 configurations of Adam, 3 seeds each."""
    return {
        "name": f"bench-enqueue-{i}",
        # n_train: at least the largest batch size (a larger batch is refused).
        "workload": {"preset": "sensor_lstm", "params": {"n_train": 512, "timesteps": 8}},
        "epochs": 20,
        "seeds": 3,
        "space": {
            "optimizer": ["adam"],
            "learning_rate": [float(f"{x:.3g}") for x in np.geomspace(1e-5, 1e-1, 10)],
            "batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            "beta_1": [0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.99],
            "beta_2": [0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999],
        },
    }


def bench(label: str, url: str, repeat: int) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from service.api.app import create_app
    from service.core import tokens
    from service.core.config import Settings
    from service.core.db import Database
    from service.core.migrate import upgrade
    from service.core.repo.models import Config

    upgrade(url)
    settings = Settings(database_url=url, workers=0)
    db = Database(url)
    with db.transaction() as s:
        _, secret = tokens.create_token(s, name="bench")
    times = []
    with TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {secret}"}) as client:
        for i in range(repeat):
            t0 = time.perf_counter()
            r = client.post("/v1/sweeps", json=spec(i))
            elapsed = time.perf_counter() - t0
            assert r.status_code == 201, r.text[:500]
            body = r.json()
            with db.transaction() as s:
                n = s.scalar(select(func.count()).select_from(Config).where(Config.sweep_id == body["id"]))
            assert n == body["n_configs"] == 10_000, (n, body["n_configs"])
            times.append(elapsed)
            _out(f"{label}: sweep {body['id']} accepted, {n} configurations in {elapsed:.2f} s")
    db.dispose()
    med = statistics.median(times)
    _out(f"{label}: median {med:.2f} s per 10,000-configuration grid ({10_000 / med:,.0f} configurations/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="grids to submit per database")
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL server (a throwaway database is created)")
    args = ap.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.repeat)
    if args.postgres:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"bench_enqueue_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench(
                "PostgreSQL",
                make_url(args.postgres).set(database=name).render_as_string(hide_password=False),
                args.repeat,
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
