"""Scale: many worker processes on one PostgreSQL, the database path alone, directly and through PgBouncer.

Each of ``--workers`` processes runs the real worker loop (workers/loop.py:
reaping, fair-share claims sized by the live workers, heartbeats, buffered
curve writes, finishing, closing the sweep) with the worker manifests'
connection budget (2 + 0 + 2) and a trainer that reports its epochs at once,
so what is timed is the queue and the database, not training. One
configuration per claim (pack size 1), one seed, ``--epochs`` epochs.

All processes start, import and register first; then they claim for
``--duration`` seconds together, after which each is stopped with SIGTERM as
Kubernetes would (unfinished work is released). Printed per mode (direct,
pgbouncer):

- claims/s: configurations finished in the window per second;
- the database's transactions (pg_stat_database xact_commit) per claim;
- peak connections to the database in pg_stat_activity, less the driver's
  own (through PgBouncer these are its server connections), against the
  documented budget
  (4 per worker: docs/kubernetes.md, "Connection budget");
- trials claimed twice (Optuna trials COMPLETE beyond the completed
  configurations, seeds with two runs, configurations with two COMPLETE
  trials): must be 0.

Usage:
    flock /tmp/cpu-heavy.lock python benchmarks/bench_scale.py                  # 64 workers, 60 s per mode
    python benchmarks/bench_scale.py --workers 8 --duration 10 --modes direct   # small
    python benchmarks/bench_scale.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_load import _free_port, _integrity, _start_postgres  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from service.core.config import Settings  # noqa: E402
from service.core.connections import ConnectionBudget  # noqa: E402
from service.core.db import Database  # noqa: E402
from service.core.migrate import upgrade  # noqa: E402
from service.core.sweeps import create_sweep, parse_spec  # noqa: E402
from tests.workers.fake_clock import FakeClock  # noqa: E402
from tests.workers.fake_training import FakeResolver, FakeTrainer  # noqa: E402
from workers.loop import WorkerLoop  # noqa: E402

PG_SCRIPT = ROOT / ".ci" / "postgres.sh"
BOUNCER_SCRIPT = ROOT / ".ci" / "pgbouncer.sh"
WORKER_ENV = {"SWEEPS_DB_POOL_SIZE": "2", "SWEEPS_DB_MAX_OVERFLOW": "0", "SWEEPS_DB_OPTUNA_POOL_SIZE": "2"}
BUDGET_PER_WORKER = ConnectionBudget(pool_size=2, max_overflow=0, optuna_pool_size=2).max_connections
BOUNCER_SERVER_CONNECTIONS = 20


# ---------------------------------------------------------------- one worker process


def child(url: str, ready: Path, go: Path, duration: float) -> None:
    settings = Settings(
        database_url=url,
        pack_max_replicas=1,
        poll_interval_s=0.05,
        heartbeat_interval_s=5.0,
        heartbeat_grace_s=60.0,
    )  # the pool sizes and SWEEPS_DB_PGBOUNCER come from the environment
    db = Database(url, ConnectionBudget.from_settings(settings))
    loop = WorkerLoop(
        settings=settings,
        db=db,
        resolver=FakeResolver(),  # a regression workload with no data or model
        # reports every epoch at once (its fake clock moves, the real one does not)
        trainer_factory=lambda _w, _c: FakeTrainer(clock=FakeClock(), epoch_s=0.0),
    )
    signal.signal(signal.SIGTERM, lambda *_: loop.stopping.set())
    loop.register()
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
    threading.Timer(duration, loop.stopping.set).start()
    loop.run()
    db.dispose()


# ---------------------------------------------------------------- the driver


def _spec(n_configs: int, epochs: int) -> dict[str, Any]:
    lrs = [round(1e-4 + i * 1e-5, 8) for i in range(n_configs)]
    workload = {"preset": "least_squares", "params": {"n": 8, "d": 2}}
    return {
        "name": "scale",
        "workload": workload,
        "epochs": epochs,
        "seeds": 1,
        "space": {"learning_rate": lrs},
    }


def _fresh_database(admin: str) -> str:
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def _sample(
    engine: Engine, database: str, stop: threading.Event, peaks: dict[str, int], *, once: bool = False
) -> None:
    """Peak backends on the database (all states, and active ones), every 0.1 s."""
    with engine.connect() as conn:
        while not stop.is_set():
            row = conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).one()
            conn.rollback()
            peaks["connections"] = max(peaks["connections"], int(row[0]))
            peaks["active"] = max(peaks["active"], int(row[1]))
            if once:
                return
            stop.wait(0.1)


def _commits(engine: Engine, database: str) -> int:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        n = conn.execute(text("SELECT xact_commit FROM pg_stat_database WHERE datname = :d"), {"d": database})
        return int(n.scalar_one())


def _completed_in(engine: Engine, since: float, until: float) -> int:
    with engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM configs WHERE state = 'completed' "
                "AND finished_at >= to_timestamp(:a) AND finished_at < to_timestamp(:b)"
            ),
            {"a": since, "b": until},
        )
        return int(n.scalar_one())


def run_mode(admin: str, mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    direct = _fresh_database(admin)
    database = make_url(direct).database
    assert database is not None
    url = direct
    env = {**os.environ, **WORKER_ENV, "SWEEPS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    bouncer_dir = tmp / f"pgbouncer-{mode}"
    if mode == "pgbouncer":
        port = _free_port()
        start = [str(port), str(make_url(admin).port), str(BOUNCER_SERVER_CONNECTIONS)]
        subprocess.run(["bash", str(BOUNCER_SCRIPT), "start", str(bouncer_dir), *start], check=True)
        url = make_url(direct).set(port=port).render_as_string(hide_password=False)
        env["SWEEPS_DB_PGBOUNCER"] = "true"
    db = Database(direct)
    settings = Settings(database_url=direct, max_configs=args.configs, max_runs=args.configs)
    sweep, _ = create_sweep(db, settings, parse_spec(_spec(args.configs, args.epochs)))
    admin_engine = create_engine(direct)
    procs = []
    baseline = {"connections": 0, "active": 0}
    _sample(admin_engine, database, threading.Event(), baseline, once=True)  # the driver's own
    try:
        go = tmp / f"go-{mode}"
        readies = [tmp / f"ready-{mode}-{i}" for i in range(args.workers)]
        for i, ready in enumerate(readies):
            cmd = [sys.executable, __file__, "--child", url, str(ready), str(go), str(args.duration)]
            log = (tmp / f"worker-{mode}-{i}.log").open("ab")
            procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 600
        while not all(r.exists() for r in readies):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers did not start; logs in {tmp}")
            time.sleep(0.2)
        peaks = {"connections": 0, "active": 0}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(admin_engine, database, stop, peaks))
        commits0 = _commits(admin_engine, database)
        sampler.start()
        t0 = time.time()
        go.touch()
        for p in procs:
            p.wait(timeout=args.duration + 120)
        t1 = t0 + args.duration
        stop.set()
        sampler.join()
        commits = _commits(admin_engine, database) - commits0
        done = _completed_in(admin_engine, t0, t1)
        integrity = _integrity(db)
        with admin_engine.connect() as conn:
            left_running = int(
                conn.execute(text("SELECT count(*) FROM configs WHERE state = 'running'")).scalar_one()
            )
            # each configuration has its own learning rate: two COMPLETE trials with one are a double claim
            doubles = int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT p.param_value FROM trials t "
                        "JOIN trial_params p ON p.trial_id = t.trial_id "
                        "WHERE t.state = 'COMPLETE' AND p.param_name = 'learning_rate' "
                        "GROUP BY t.study_id, p.param_value HAVING count(*) > 1) x"
                    )
                ).scalar_one()
            )
        return {
            "mode": mode,
            "workers": args.workers,
            "window_s": args.duration,
            "configs_done_in_window": done,
            "claims_per_s": round(done / args.duration, 1),
            "transactions_per_claim": round(commits / max(1, done), 1),
            "peak_connections": peaks["connections"] - baseline["connections"],
            "peak_active": peaks["active"],
            "budget": args.workers * BUDGET_PER_WORKER,
            "server_connections_limit": BOUNCER_SERVER_CONNECTIONS if mode == "pgbouncer" else None,
            "left_running": left_running,
            "claimed_twice": integrity["trials_completed_beyond_configs"]
            + integrity["duplicate_runs"]
            + doubles,
            "retries": integrity["retries"],
            "sweep": sweep.id,
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        admin_engine.dispose()
        db.dispose()
        if mode == "pgbouncer":
            subprocess.run(["bash", str(BOUNCER_SCRIPT), "stop", str(bouncer_dir)], check=False)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, url, ready, go, duration = sys.argv
        child(url, Path(ready), Path(go), float(duration))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--database-url", help="an admin URL of a PostgreSQL server (a database is created on it)"
    )
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of claiming per mode")
    ap.add_argument("--configs", type=int, default=20_000, help="configurations in the sweep (never run out)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--modes", default="direct,pgbouncer")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    pg_dir = None
    if args.database_url:
        admin = args.database_url
    else:
        pg_dir = tempfile.mkdtemp(prefix="bench-scale-pg-", dir="/tmp")
        os.chmod(pg_dir, 0o755)
        admin = _start_postgres(pg_dir)
    try:
        for mode in args.modes.split(","):
            result = run_mode(admin, mode, args, tmp)
            print(json.dumps(result), flush=True)
    finally:
        if pg_dir:
            subprocess.run(["bash", str(PG_SCRIPT), "stop", pg_dir], check=False)
            shutil.rmtree(pg_dir, ignore_errors=True)
    print(f"worker logs in {tmp}")


if __name__ == "__main__":
    main()
