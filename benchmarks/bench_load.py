"""Load on the service: 8 workers on PostgreSQL while clients submit and read, all on loopback.

What it runs, in one process run on a throwaway PostgreSQL cluster
(``.ci/postgres.sh`` on a free port, or ``--database-url`` to use one of yours):

1. Claim throughput as workers go from 1 to 8 (``--workers-steps``): for each
   N, a fresh grid sweep of ``--configs`` configurations of a fast synthetic
   workload (least_squares, n=8, d=2: milliseconds per epoch), N worker
   processes with one configuration per claim (pack size 1, so every claim is
   one trip through the queue), timed from the sweep's first claim to its last
   finish, from the database's own timestamps. Worker start-up and a warm-up
   sweep (Keras builds and traces) come before and are not counted.
2. Mixed HTTP load: ``--clients`` threads for ``--duration`` seconds against a
   live ``sweeps serve --workers 0`` while 8 workers drain the sweeps the
   clients submit: 10% POST /v1/sweeps (with a token), the rest reads (list,
   one sweep, its runs, its trials, /metrics, /v1/workers).

It prints requests/s, p50/p99 latency, errors (non-2xx or transport errors;
must be 0), and from the database the configurations that were completed
twice or got two runs for one seed (must be 0), next to the retries
(attempts) so a reaped retry is never mistaken for a double claim.

Usage:
    flock /tmp/cpu-heavy.lock python benchmarks/bench_load.py --duration 30
    python benchmarks/bench_load.py --configs 40 --duration 15 --workers-steps 1,2,4,8   # small
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from service.core import tokens  # noqa: E402
from service.core.db import Database  # noqa: E402
from service.core.migrate import upgrade  # noqa: E402
from service.core.repo.models import Config, Run  # noqa: E402
from service.core.states import ACTIVE_SWEEP_STATES, ConfigState  # noqa: E402
from service.core.timeutil import aware  # noqa: E402

PG_SCRIPT = ROOT / ".ci" / "postgres.sh"
WORKLOAD = {"preset": "least_squares", "params": {"n": 8, "d": 2}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(name: str, n_configs: int, epochs: int) -> dict[str, Any]:
    lrs = [round(0.05 + 0.9 * i / max(1, n_configs - 1), 6) for i in range(n_configs)]
    return {"name": name, "workload": WORKLOAD, "epochs": epochs, "seeds": 1, "space": {"learning_rate": lrs}}


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SWEEPS_DATABASE_URL": url,
        "SWEEPS_PACK_MAX_REPLICAS": "1",
        "SWEEPS_POLL_INTERVAL_S": "0.05",
        "SWEEPS_HEARTBEAT_INTERVAL_S": "1",
        "SWEEPS_HEARTBEAT_GRACE_S": "30",
        "SWEEPS_LOG_LEVEL": "WARNING",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _workers(url: str, n: int, log_dir: Path, max_idle: float) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "service.cli", "worker", "--max-idle", str(max_idle)]
    return [
        subprocess.Popen(
            cmd,
            env=_env(url),
            cwd=ROOT,
            stdout=(log_dir / f"worker{i}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for i in range(n)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def _wait_done(http: httpx.Client, sweep_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sw: dict[str, Any] = http.get(f"/v1/sweeps/{sweep_id}").json()
        if sw["state"] not in ACTIVE_SWEEP_STATES:
            return sw
        time.sleep(0.5)
    raise SystemExit(f"sweep {sweep_id} did not finish in {timeout:.0f} s")


def _wait_live(http: httpx.Client, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(http.get("/v1/workers").json()) >= n:
            return
        time.sleep(0.5)
    raise SystemExit(f"{n} workers did not register in {timeout:.0f} s")


def _claim_window(db: Database, sweep_id: int) -> tuple[int, float]:
    with db.transaction() as s:
        rows = s.execute(
            select(Config.started_at, Config.finished_at).where(
                Config.sweep_id == sweep_id, Config.state == ConfigState.COMPLETED
            )
        ).all()
    starts = [aware(a) for a, _ in rows]
    ends = [aware(b) for _, b in rows]
    span = (max(ends) - min(starts)).total_seconds()  # type: ignore[operator,type-var]
    return len(rows), span


def _integrity(db: Database) -> dict[str, int]:
    """A double claim would show as more COMPLETE Optuna trials in a sweep than completed
    configurations, or a seed with two runs; reaped retries (attempts) are counted apart."""
    with db.transaction() as s:
        dup_runs = s.execute(
            select(Run.config_id, Run.seed).group_by(Run.config_id, Run.seed).having(func.count() > 1)
        ).all()
        retries = s.scalar(select(func.coalesce(func.sum(Config.attempts), 0)))
        per_sweep = s.execute(
            text(
                "SELECT s.id, "
                "(SELECT COUNT(*) FROM trials t WHERE t.study_id = s.study_id AND t.state = 'COMPLETE'), "
                "(SELECT COUNT(*) FROM configs c WHERE c.sweep_id = s.id AND c.state = 'completed') "
                "FROM sweeps s"
            )
        ).all()
    return {
        "duplicate_runs": len(dup_runs),
        "trials_completed_beyond_configs": sum(max(0, int(t) - int(c)) for _, t, c in per_sweep),
        "retries": int(retries or 0),
    }


# ---------------------------------------------------------------- HTTP load


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_loop(base: str, token: str, stop_at: float, stats: LoadStats, seed: int, epochs: int) -> None:
    rng = random.Random(seed)
    sweep_ids: list[int] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            roll = rng.random()
            if roll < 0.10 or not sweep_ids:
                method, path, kwargs = "POST", "/v1/sweeps", {"json": _spec(f"load-{seed}-{n}", 4, epochs)}
                kwargs["headers"] = {"Idempotency-Key": f"load-{seed}-{n}"}  # type: ignore[assignment]
            else:
                sid = rng.choice(sweep_ids)
                method, kwargs = "GET", {}
                path = rng.choice(
                    [
                        "/v1/sweeps",
                        f"/v1/sweeps/{sid}",
                        f"/v1/sweeps/{sid}/runs",
                        f"/v1/sweeps/{sid}/configs",
                        "/v1/workers",
                        "/metrics",
                        "/healthz",
                    ]
                )
            t0 = time.perf_counter()
            try:
                resp = http.request(method, path, **kwargs)  # type: ignore[arg-type]
                dt = time.perf_counter() - t0
                ok = resp.status_code < 300
                if ok and method == "POST":
                    sweep_ids.append(int(resp.json()["id"]))
                with stats.lock:
                    stats.latencies.append(dt)
                    stats.statuses[f"{method} {resp.status_code}"] += 1
                    if not ok:
                        stats.errors.append(f"{method} {path} -> {resp.status_code} {resp.text[:200]}")
            except httpx.HTTPError as exc:
                with stats.lock:
                    stats.errors.append(f"{method} {path} -> {type(exc).__name__}: {exc}")


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---------------------------------------------------------------- main


def _start_postgres(data: str) -> str:
    out = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", data, str(_free_port())], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--database-url", help="an empty PostgreSQL database to use instead of a throwaway cluster"
    )
    ap.add_argument("--configs", type=int, default=80, help="configurations per claim-throughput step")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers-steps", default="1,2,4,8")
    ap.add_argument("--load-workers", type=int, default=8)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of mixed HTTP load")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    pg_dir: str | None = None
    if args.database_url:
        url = args.database_url
    else:
        pg_dir = tempfile.mkdtemp(prefix="bench-load-pg-", dir="/tmp")
        os.chmod(pg_dir, 0o755)
        admin = _start_postgres(pg_dir)
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text('CREATE DATABASE "bench_load"'))
        engine.dispose()
        url = make_url(admin).set(database="bench_load").render_as_string(hide_password=False)
    api: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        db = Database(url)
        with db.transaction() as s:
            _, token = tokens.create_token(s, name="bench")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--workers",
                "0",
                "--port",
                str(port),
                "--database-url",
                url,
            ],
            env={**_env(url), "SWEEPS_MAX_SWEEPS_IN_FLIGHT_PER_TOKEN": "100000"},
            cwd=ROOT,
            stdout=(tmp / "api.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start; see " + str(tmp / "api.log"))
            time.sleep(0.3)
        print(f"PostgreSQL {make_url(url).render_as_string(hide_password=True)}; API {base}; logs in {tmp}")
        print(f"workload {WORKLOAD}, {args.epochs} epochs, 1 seed, one configuration per claim\n")

        print(
            "claim throughput (configs claimed, trained and finished per second, first claim to last finish)"
        )
        base_rate = None
        for n in [int(x) for x in args.workers_steps.split(",")]:
            procs = _workers(url, n, tmp, max_idle=600)
            try:
                # Not timed: TensorFlow imports, registration, and a warm-up sweep
                # (Keras builds and traces on each worker's first configurations).
                _wait_live(http, n)
                warm = http.post("/v1/sweeps", json=_spec(f"warmup-{n}", 2 * n, args.epochs)).json()
                _wait_done(http, warm["id"], timeout=600)
                sweep = http.post("/v1/sweeps", json=_spec(f"claims-{n}", args.configs, args.epochs)).json()
                final = _wait_done(http, sweep["id"], timeout=600)
            finally:
                _stop(procs)
            done, span = _claim_window(db, sweep["id"])
            rate = done / span if span > 0 else float("nan")
            base_rate = base_rate or rate
            print(
                f"  {n} worker(s): {done}/{final['n_configs']} configs in {span:6.2f} s "
                f"= {rate:7.1f} claims/s "
                f"(x{rate / base_rate:.2f} vs 1 worker)"
            )

        print(
            f"\nmixed load: {args.clients} clients for {args.duration:.0f} s, "
            f"{args.load_workers} workers draining"
        )
        procs = _workers(url, args.load_workers, tmp, max_idle=600)
        _wait_live(http, args.load_workers)  # TensorFlow imported before the clock starts
        stats = LoadStats()
        stop_at = time.monotonic() + args.duration
        threads = [
            threading.Thread(target=_client_loop, args=(base, token, stop_at, stats, i, args.epochs))
            for i in range(args.clients)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        # Let the workers drain what the clients submitted, then check integrity.
        drain_deadline = time.monotonic() + 300
        while time.monotonic() < drain_deadline:
            with db.transaction() as s:
                pending = s.scalar(
                    select(func.count())
                    .select_from(Config)
                    .where(Config.state.in_((ConfigState.WAITING, ConfigState.RUNNING)))
                )
            if not pending:
                break
            time.sleep(1.0)
        _stop(procs)
        lat = stats.latencies
        print(f"  requests   {len(lat)} in {wall:.1f} s = {len(lat) / wall:.1f} req/s")
        print(
            f"  latency    p50 {1000 * _pct(lat, 0.50):.1f} ms, p99 {1000 * _pct(lat, 0.99):.1f} ms, "
            f"mean {1000 * statistics.fmean(lat) if lat else float('nan'):.1f} ms"
        )
        print(f"  by status  {dict(sorted(stats.statuses.items()))}")
        print(f"  errors     {len(stats.errors)}  (must be 0)")
        for e in stats.errors[:10]:
            print(f"    {e}")
        integ = _integrity(db)
        with db.transaction() as s:
            left = s.scalar(
                select(func.count())
                .select_from(Config)
                .where(Config.state.in_((ConfigState.WAITING, ConfigState.RUNNING)))
            )
        print(
            f"  trials claimed twice: {integ['trials_completed_beyond_configs']} completed beyond their "
            f"configurations, {integ['duplicate_runs']} seeds with two runs  (must be 0)"
        )
        print(
            f"  retries after reaping: {integ['retries']}; configurations still pending after drain: {left}"
        )
        http.close()
        db.dispose()
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                api.kill()
        if pg_dir:
            subprocess.run(["bash", str(PG_SCRIPT), "stop", pg_dir], check=False, capture_output=True)
            shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
