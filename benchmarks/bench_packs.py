"""Training packs against the naive loop and Optuna, measured in one run.

Reference sweep (the training-packs issue): the sensor_lstm preset, learning rate x
batch size x beta_1 x seeds = 5 x 3 x 2 x 8, 30 epochs, Adam. ``--scale``
shrinks epochs and seeds (and the lr grid below 1) so a small version runs in
minutes.

Parts, all in this one process run (ratios, never absolute gates):

(a) naive: one fresh Keras model + ``model.fit`` per run, as the user of
    report 1 would train it. Subsampled (``--naive-runs`` per batch size, each
    with the full epochs of the run); the replica-epochs/s is extrapolated to
    the whole sweep.
(a') the naive loop that records what the service records: the same
    ``model.fit`` with a callback that runs ``model.evaluate`` on the whole
    training set (and the validation set, if any) after every epoch. (a) is
    what users write; (a') is the fair baseline for the service's curves.
(b) Optuna ``study.optimize(n_jobs=2)`` over the same configurations
    (GridSampler), each trial training its seeds with ``model.fit``;
    subsampled (``--optuna-trials``), rate extrapolated.
(c) the service end to end: ``sweeps serve`` (API + ``--workers`` local
    workers) on a fresh SQLite file, the sweep POSTed over HTTP, progress
    polled until the sweep is finished; time from submit to last result.
    The workers' per-pack log lines (``workers.training.packs``) give the
    share of worker time inside compiled training steps. Then each batch
    size's part of the sweep alone, each on a fresh service (the targets are
    per batch size: (c)/(a) at batch 2 and at batch 32).
(c') PackTrainer directly, packs as a worker forms them (one batch size per
    pack, up to ``--max-replicas``), with a bulk SQLite write per epoch:
    per-batch-size rates, compile time apart.

Usage: python benchmarks/bench_packs.py --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _out(msg: str = "") -> None:
    print(msg, flush=True)  # a benchmark script's console output


def grid(scale: float) -> dict[str, Any]:
    lrs_all = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    n_lr = max(2, min(5, round(5 * scale))) if scale < 1 else 5
    idx = sorted({round(i * (len(lrs_all) - 1) / max(1, n_lr - 1)) for i in range(n_lr)})
    return {
        "learning_rate": [lrs_all[i] for i in idx],
        "batch_size": [2, 8, 32],
        "beta_1": [0.5, 0.9],
        "seeds": max(2, round(8 * scale)) if scale < 1 else 8,
        "epochs": max(2, round(30 * scale)) if scale < 1 else 30,
    }


def configs(g: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"optimizer": "adam", "learning_rate": lr, "batch_size": b, "beta_1": b1}
        for lr in g["learning_rate"]
        for b in g["batch_size"]
        for b1 in g["beta_1"]
    ]


# --------------------------------------------------------------------------- (a)


def full_set_callback(ds: Any) -> Any:
    """A callback that evaluates the whole training (and validation) set after every epoch."""
    import keras

    class FullSetEvaluation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.model.evaluate(ds.x_train, ds.y_train, verbose=0)
            if ds.x_val is not None:
                self.model.evaluate(ds.x_val, ds.y_val, verbose=0)

    return FullSetEvaluation()


def fit_one(workload: Any, cfg: dict[str, Any], seed: int, epochs: int, *, record: bool = False) -> None:
    """One run as a user writes it; ``record``: evaluated on the full sets after every epoch (a')."""
    import keras

    ds = workload.dataset()
    keras.utils.set_random_seed(seed)
    model = workload.build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg["learning_rate"], beta_1=cfg.get("beta_1", 0.9)),
        loss=workload.loss,
        metrics=["accuracy"],
    )
    model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=cfg["batch_size"],
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[full_set_callback(ds)] if record else [],
    )


def part_a(
    workload: Any, g: dict[str, Any], runs_per_batch: int, *, record: bool = False
) -> dict[int, float]:
    """(a), or (a') with ``record``: replica-epochs/s per batch size of the naive loop."""
    rates: dict[int, float] = {}
    label = "(a')" if record else "(a) "
    for b in g["batch_size"]:
        cfgs = [c for c in configs(g) if c["batch_size"] == b][:runs_per_batch]
        t = time.perf_counter()
        for i, c in enumerate(cfgs):
            fit_one(workload, c, i, g["epochs"], record=record)
        dt = time.perf_counter() - t
        rates[b] = len(cfgs) * g["epochs"] / dt
        _out(
            f"  {label} batch {b:>2}: {len(cfgs)} runs x {g['epochs']} epochs in {dt:.1f}s "
            f"-> {rates[b]:.2f} rep-ep/s"
        )
    return rates


# --------------------------------------------------------------------------- (b)


def part_b(workload: Any, g: dict[str, Any], n_trials: int, seeds: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {k: g[k] for k in ("learning_rate", "batch_size", "beta_1")}
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space, seed=0))

    def objective(trial: optuna.Trial) -> float:
        cfg = {
            "learning_rate": trial.suggest_categorical("learning_rate", g["learning_rate"]),
            "batch_size": trial.suggest_categorical("batch_size", g["batch_size"]),
            "beta_1": trial.suggest_categorical("beta_1", g["beta_1"]),
        }
        for s in range(seeds):
            fit_one(workload, cfg, s, g["epochs"])
        return 0.0

    t = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, n_jobs=2)
    dt = time.perf_counter() - t
    rate = n_trials * seeds * g["epochs"] / dt
    _out(
        f"  (b) {n_trials} trials x {seeds} seeds x {g['epochs']} epochs, n_jobs=2, in {dt:.1f}s "
        f"-> {rate:.2f} rep-ep/s"
    )
    return rate


# --------------------------------------------------------------------------- (c')


class SqliteObserver:
    """One bulk INSERT per epoch, as the worker's observer does."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("create table if not exists curve (run text, epoch int, loss real, acc real)")

    def on_epoch(self, records: Sequence[tuple[Hashable, Any]]) -> None:
        self.db.executemany(
            "insert into curve values (?, ?, ?, ?)",
            [(str(k), r.epoch, r.loss, r.accuracy) for k, r in records],
        )
        self.db.commit()

    def should_stop(self) -> bool:
        return False


def part_c_direct(workload: Any, g: dict[str, Any], max_replicas: int) -> dict[str, Any]:
    from service.core.spec import seed_pairs
    from workers.training.interface import ReplicaSpec
    from workers.training.packs import PackTrainer

    trainer = PackTrainer(max_replicas=max_replicas)
    obs = SqliteObserver(os.path.join(tempfile.mkdtemp(), "curves.db"))
    pairs = seed_pairs(g["seeds"])
    per_batch: dict[int, dict[str, float]] = {}
    t_all = time.perf_counter()
    for b in g["batch_size"]:
        reps = [
            ReplicaSpec((i, s), c, init, data)
            for i, c in enumerate(configs(g))
            if c["batch_size"] == b
            for s, init, data in pairs
        ]
        before = dict(vars(trainer.stats))
        t = time.perf_counter()
        trainer.train(workload, reps, g["epochs"], obs)
        dt = time.perf_counter() - t
        after = vars(trainer.stats)
        d = {k: after[k] - before[k] for k in after}
        per_batch[b] = {
            "rate": len(reps) * g["epochs"] / dt,
            "rate_no_compile": len(reps) * g["epochs"] / max(1e-9, dt - d["compile_s"]),
            "wall": dt,
            **d,
        }
        _out(
            f"  (c') batch {b:>2}: {len(reps)} replicas in packs of <= {max_replicas}: {dt:.1f}s "
            f"(compile {d['compile_s']:.1f}s, steps {d['step_s']:.1f}s, eval {d['eval_s']:.1f}s, "
            f"model builds {d['build_s']:.1f}s, host {d['host_s']:.2f}s of which DB {d['observer_s']:.2f}s) "
            f"-> {per_batch[b]['rate']:.1f} rep-ep/s, {per_batch[b]['rate_no_compile']:.1f} without compile"
        )
    total = time.perf_counter() - t_all
    st = trainer.stats
    return {"per_batch": per_batch, "wall": total, "stats": vars(st)}


# --------------------------------------------------------------------------- (c)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


def _http_list(url: str) -> list[Any]:
    with urllib.request.urlopen(url, timeout=30) as r:
        out: list[Any] = json.loads(r.read())
        return out


_PACK_LINE = re.compile(r"pack done: (.*)")

# The last reference figures (benchmarks/README.md, "Fused LSTM kernel, dynamic pack size,
# guided claims", --scale 1.0), printed beside this run's so a regression shows. Replica-epochs/s.
README_LAST: dict[str, Any] = {
    "a": {2: 2.13, 8: 4.35, 32: 8.62, "all": 3.68},
    "b": 4.70,
    "c": [61.2, 63.0],  # the whole sweep, cold then warm
    "cbatch": {2: [36.6, 44.6], 8: [69.0, 82.4], 32: [106.3, 126.8]},
}


def _last(value: float | None) -> str:
    return f" [README last: {value:.2f}]" if value is not None else ""


def part_c_service(
    g: dict[str, Any],
    workers: int,
    timeout_s: float,
    repeats: int = 1,
    stall_s: float = 180,
    *,
    workload: Callable[[str], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The sweep of grid ``g`` through a fresh ``sweeps serve``, ``repeats`` times in a row.

    The first run is cold (every pack function compiled in it); later ones show a
    long-lived service whose workers reuse what they compiled. ``workload``: given the
    API's base URL once the service is up, the spec's workload block (it may upload a
    dataset and a model first); default the sensor_lstm preset.
    """
    tmp = tempfile.mkdtemp()
    db = f"sqlite:///{tmp}/bench.db"
    port = _free_port()
    log_path = Path(tmp) / "serve.log"
    env = {**os.environ, "SWEEPS_LOG_LEVEL": "INFO"}
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--database-url",
        db,
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--open-writes",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                _http("GET", f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 60:
                    _out(f"  (c) the service did not start; log: {log_path}")
                    return []
                time.sleep(0.5)
        # A long-lived service: its workers are up (TensorFlow imported, registered) before the
        # sweep arrives, so the first claim sees every live worker. Compilation stays cold.
        while len(_http_list(f"{base}/workers")) < workers:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                _out(f"  (c) the workers did not start; log: {log_path}")
                return []
            time.sleep(0.5)
        t_ready = time.perf_counter() - t0
        block = workload(base) if workload is not None else {"preset": "sensor_lstm", "params": {}}
        spec = {
            "name": "bench-packs",
            "workload": block,
            "epochs": g["epochs"],
            "seeds": g["seeds"],
            "space": {k: g[k] for k in ("learning_rate", "batch_size", "beta_1")} | {"optimizer": ["adam"]},
        }
        runs_out = []
        for _ in range(repeats):
            busy0 = _worker_seconds(tmp)
            t_wall0, t_submit = time.time(), time.perf_counter()
            sweep = _http("POST", f"{base}/sweeps", spec)
            sid = sweep["id"]
            last = sweep
            seen, t_change = -1, time.perf_counter()
            while time.perf_counter() - t_submit < timeout_s:
                last = _http("GET", f"{base}/sweeps/{sid}")
                if last["state"] not in ("queued", "running", "pending", "waiting"):
                    break
                if last.get("runs_done", 0) != seen:
                    seen, t_change = last.get("runs_done", 0), time.perf_counter()
                elif time.perf_counter() - t_change > stall_s:
                    _out(f"  (c) no progress for {stall_s:.0f}s (workers gone?); stopping; log: {log_path}")
                    break
                time.sleep(0.5)
            t_done = time.perf_counter() - t_submit
            time.sleep(1.0)  # the last pack's log line and the workers table's last update
            busy1 = _worker_seconds(tmp)
            runs_out.append(
                {
                    "busy_s": busy1[0] - busy0[0],
                    "train_s": busy1[1] - busy0[1],
                    "state": last["state"],
                    "submit_to_last_s": t_done,
                    "runs_done": last.get("runs_done", 0),
                    "runs_total": last.get("runs_total"),
                    "window": (t_wall0, time.time()),
                    "log": str(log_path),
                    "ready_s": t_ready,
                }
            )
            if last["state"] != "completed":
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    lines = log_path.read_text(errors="replace").splitlines()
    for run in runs_out:
        lo, hi = run.pop("window")
        mine = [ln for ln in lines if lo <= _log_time(ln) <= hi]
        run["compiles"] = sum("compiling pack functions:" in ln for ln in mine)
        # Why a workload was trained one replica at a time (the chooser warns once per process).
        marker = "cannot be packed ("
        run["fallback"] = sorted({ln.split(marker, 1)[1].rsplit(")", 1)[0] for ln in lines if marker in ln})
        run["packs"] = [
            {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
            for ln in mine
            if (m := _PACK_LINE.search(ln))
        ]
    return runs_out


def _worker_seconds(tmp: str) -> tuple[float, float]:
    """The workers' own accounting (workers table), summed over workers: busy = wall time
    between claiming a pack and finishing it, train = inside trainer.train minus callbacks."""
    con = sqlite3.connect(f"{tmp}/bench.db")
    try:
        busy, train = con.execute("select sum(busy_seconds), sum(train_seconds) from workers").fetchone()
    finally:
        con.close()
    return float(busy or 0.0), float(train or 0.0)


def _log_time(line: str) -> float:
    try:
        return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
    except ValueError:
        return -1.0


def report_service(
    cs: dict[str, Any],
    g: dict[str, Any],
    workers: int,
    a: dict[int, float],
    a_ref: float | None,
    b_rate: float | None,
    a2_ref: float | None = None,
) -> None:
    """Print one service run: rate, ratios to (a)/(a')/(b), and where the workers' wall time went."""
    done = cs["runs_done"] * g["epochs"]
    wall = cs["submit_to_last_s"]
    rate = done / wall if wall > 0 else math.nan
    _out(
        f"  (c) service end to end ({workers} workers): state {cs['state']}, {cs['runs_done']}/"
        f"{cs['runs_total']} runs, submit -> last result {wall:.1f}s -> {rate:.1f} rep-ep/s "
        f"(service and workers up {cs['ready_s']:.1f}s before submit)"
    )
    if a_ref:
        _out(f"      (c)/(a) = {rate / a_ref:.1f}x" + (f", (c)/(b) = {rate / b_rate:.1f}x" if b_rate else ""))
    if a2_ref:
        _out(f"      (c)/(a') = {rate / a2_ref:.1f}x (the naive loop that evaluates as the service does)")
    for reason in cs.get("fallback", []):
        _out(f"      NOT PACKED, trained one replica at a time: {reason}")
    if cs["packs"]:
        tot = sum(p["total_s"] for p in cs["packs"])
        shares = {k: sum(p[f"{k}_s"] for p in cs["packs"]) / tot for k in ("compile", "step", "eval")}
        _out(
            "      share of the packs' time: "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items())
            + f", other {100 * (1 - sum(shares.values())):.0f}% (model builds, host, DB writes)"
        )
        tot = sum(p["total_s"] for p in cs["packs"])
        inside = sum(p["step_s"] + p["eval_s"] for p in cs["packs"])
        comp = sum(p["compile_s"] for p in cs["packs"])
        worker_wall = workers * wall
        _out(
            f"      {len(cs['packs'])} packs; in PackTrainer {tot:.1f}s of {worker_wall:.1f}s worker wall "
            f"({workers} x submit->last); compiled steps+evals {inside:.1f}s; compile {comp:.1f}s"
        )
        hits = sum(int(p.get("cache_hit", 0)) for p in cs["packs"])
        sizes = sorted(int(p["k"]) for p in cs["packs"])
        _out(
            f"      pack sizes (replicas) {sizes}; packs reusing a compiled function: "
            f"{hits}/{len(cs['packs'])}; compilations {cs['compiles']}"
        )
        _out(
            f"      time outside training steps: {100 * (worker_wall - inside) / worker_wall:.1f}% of worker "
            f"wall; without compilation {100 * (worker_wall - inside - comp) / worker_wall:.1f}%"
        )
        busy, train = cs["busy_s"], cs["train_s"]
        if busy > 0:
            _out(
                f"      workers table: busy {busy:.1f}s (claim -> finish, summed over workers), "
                f"in trainer.train {train:.1f}s -> outside the trainer (claims, DB, classification) "
                f"{100 * (busy - train) / busy:.1f}% of busy; outside compiled steps+evals "
                f"(compile, model builds, host, DB, claims) {100 * (busy - inside) / busy:.1f}% of busy"
            )
        for bs in g["batch_size"]:
            ps = [p for p in cs["packs"] if int(p["batch"]) == bs]
            if ps:
                r = sum(p["replica_epochs"] for p in ps) / sum(p["total_s"] for p in ps)
                ratio = f", vs (a) {r / a[bs]:.1f}x per worker" if bs in a else ""
                _out(f"      batch {bs:>2}: {r:.1f} rep-ep/s per worker inside packs{ratio}")
    _out(f"      service log: {cs['log']}")


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--naive-runs", type=int, default=2, help="(a) runs timed per batch size")
    ap.add_argument("--optuna-trials", type=int, default=4)
    ap.add_argument("--optuna-seeds", type=int, default=1)
    ap.add_argument("--max-replicas", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="TF threads of this process for (a), (b), (c')")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,a2,b,c,cbatch,cdirect")
    ap.add_argument("--service-timeout", type=float, default=3600)
    ap.add_argument(
        "--repeats", type=int, default=2, help="(c) each sweep this many times on one service (cold, warm)"
    )
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    t_import = time.perf_counter()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from workers.workloads.presets.sensor import SensorLSTM

    _out(f"import TensorFlow/Keras: {time.perf_counter() - t_import:.1f}s")
    workload = SensorLSTM({})
    g = grid(args.scale)
    n_cfg = len(configs(g))
    total_rep_ep = n_cfg * g["seeds"] * g["epochs"]
    _out(
        f"sweep: sensor_lstm, lr {g['learning_rate']} x batch {g['batch_size']} x beta_1 {g['beta_1']} "
        f"= {n_cfg} configurations x {g['seeds']} seeds x {g['epochs']} epochs "
        f"= {total_rep_ep} replica-epochs"
    )

    a = part_a(workload, g, args.naive_runs) if "a" not in skip else {}
    a2 = part_a(workload, g, args.naive_runs, record=True) if "a2" not in skip else {}
    b_rate = part_b(workload, g, args.optuna_trials, args.optuna_seeds) if "b" not in skip else None
    cd = part_c_direct(workload, g, args.max_replicas) if "cdirect" not in skip else None
    cs = part_c_service(g, args.workers, args.service_timeout, args.repeats) if "c" not in skip else []
    # The targets are per batch size: each batch size's part of the sweep alone, on a fresh service.
    per_batch = {
        bs: part_c_service({**g, "batch_size": [bs]}, args.workers, args.service_timeout, args.repeats)
        for bs in (g["batch_size"] if "cbatch" not in skip else [])
    }

    _out("\nsummary (replica-epochs/s; (a), (a') and (b) extrapolated from their subsamples)")
    if args.scale != 1.0:
        _out("  [README last] figures are --scale 1.0's: compare ratios, or run at --scale 1.0")

    def overall(rates: dict[int, float]) -> float:
        return total_rep_ep / sum(total_rep_ep / len(g["batch_size"]) / r for r in rates.values())

    a_all = overall(a) if a else 0.0
    a2_all = overall(a2) if a2 else 0.0
    if a:
        _out(f"  (a) naive model.fit loop: {a_all:.2f} overall{_last(README_LAST['a']['all'])}")
        for k, v in a.items():
            _out(f"      batch {k:>2}: {v:.2f}{_last(README_LAST['a'].get(k))}")
        _out(f"      projected time for the whole sweep: {total_rep_ep / a_all / 60:.1f} min")
    if a2:
        ratio = f"; (a')/(a) = {a2_all / a_all:.2f}" if a else ""
        _out(
            f"  (a') naive loop + full-set evaluate after every epoch: {a2_all:.2f} overall{ratio}; "
            + ", ".join(f"batch {k}: {v:.2f}" for k, v in a2.items())
        )
    if b_rate:
        _out(f"  (b) Optuna n_jobs=2:       {b_rate:.2f}{_last(README_LAST['b'])}")
    if cd:
        rate = total_rep_ep / cd["wall"]
        st = cd["stats"]
        _out(
            f"  (c') PackTrainer direct:   {rate:.1f} overall incl. {st['compile_s']:.1f}s compile "
            f"({st['compiles']} compilations)"
        )
        for bs, d in cd["per_batch"].items():
            ratio = f", (c')/(a) = {d['rate'] / a[bs]:.1f}x" if bs in a else ""
            _out(f"      batch {bs:>2}: {d['rate']:.1f} ({d['rate_no_compile']:.1f} without compile){ratio}")
        outside = st["total_s"] - st["step_s"] - st["eval_s"]
        _out(
            f"      time outside compiled steps/evals: {100 * outside / st['total_s']:.1f}% of trainer wall "
            f"(compile {st['compile_s']:.1f}s, builds {st['build_s']:.1f}s, host {st['host_s']:.2f}s)"
        )
        if a:
            _out(
                f"      (c')/(a) overall: {rate / a_all:.1f}x"
                + (f"; (c')/(b): {rate / b_rate:.1f}x" if b_rate else "")
            )

    def which(i: int) -> str:
        return "cold (fresh service)" if i == 0 else "again, same service (warm)"

    for i, run in enumerate(cs):
        last = README_LAST["c"][min(i, 1)]
        _out(f"  (c) the whole sweep, {which(i)}:{_last(last)}")
        report_service(run, g, args.workers, a, a_all if a else None, b_rate, a2_all or None)
    for bs, runs in per_batch.items():
        for i, run in enumerate(runs):
            last = README_LAST["cbatch"].get(bs, [None, None])[min(i, 1)]
            _out(f"  (c) batch {bs} alone, {which(i)}:{_last(last)}")
            report_service(
                run, {**g, "batch_size": [bs]}, args.workers, a, a.get(bs), b_rate=None, a2_ref=a2.get(bs)
            )


if __name__ == "__main__":
    main()
