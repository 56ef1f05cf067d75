"""Where a packed training step's time goes (a preset, sensor_lstm by default; steady state).

For each pack size K and batch size: the PackTrainer's steady-state epoch
time (compiled epoch function, compile excluded), the full-set evaluation
time, and replica-epochs/s by wall time and by the process's CPU time
(robust to other jobs on a shared machine). A warm-up pack compiles first;
its compile time is printed apart. Usage: python benchmarks/profile_packs.py --k 16 32 64 --batch 2 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch", type=int, nargs="+", default=[2, 32])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jit", choices=["auto", "on", "off"], default="auto")
    ap.add_argument(
        "--workload",
        default="sensor_lstm",
        help="preset name, or a bench_workloads.py workload (pixel_cnn, digits_cnn, ...)",
    )
    ap.add_argument("--param", action="append", default=[], help="preset param NAME=VALUE (repeatable)")
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import os

    if os.environ.get("GRAPPLER_OFF"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    from benchmarks.bench_workloads import BENCH_WORKLOADS
    from workers.training.interface import NullObserver, ReplicaSpec
    from workers.training.packs import PackTrainer
    from workers.training.packs.caches import PackCaches
    from workers.workloads.registry import build_preset

    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = int(value) if value.lstrip("-").isdigit() else value
    # A preset, or one of bench_workloads.py's models (pixel_cnn, digits_cnn, ...).
    bench = BENCH_WORKLOADS.get(args.workload)
    wl = bench() if bench is not None else build_preset(args.workload, params)
    jit = None if args.jit == "auto" else args.jit == "on"
    # One set of caches (compiled functions, data) for every trainer here, as in a worker.
    caches = PackCaches()
    for b in args.batch:
        for k in args.k:
            reps = [
                ReplicaSpec(i, {"optimizer": "adam", "learning_rate": args.lr, "batch_size": b}, i, i)
                for i in range(k)
            ]
            # Warm-up pack: compiles (or reuses) the functions; its epoch 1 is the compile call.
            warm = PackTrainer(max_replicas=k, jit_compile=jit, caches=caches)
            t = time.perf_counter()
            warm.train(wl, reps, 1, NullObserver())
            warm_wall = time.perf_counter() - t
            # Timed pack: every call steady state. CPU time of the process as well as wall time:
            # on a shared machine other jobs inflate wall time, not this process's CPU time
            # (one intra-op thread, so CPU time ~ the time the work needs).
            tr = PackTrainer(max_replicas=k, jit_compile=jit, caches=caches)
            t, c = time.perf_counter(), time.process_time()
            tr.train(wl, reps, args.epochs, NullObserver())
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            s = tr.stats
            ep = s.step_s / args.epochs
            ev = s.eval_s / (args.epochs + 1)  # epoch 0 is evaluated too
            rate = k / (ep + ev)
            print(
                f"batch {b:>2} K {k:>3}: epoch {ep * 1e3:7.1f} ms, eval {ev * 1e3:6.1f} ms, "
                f"compile {warm.stats.compile_s:5.1f} s (warm-up pack {warm_wall:5.1f} s), "
                f"build {warm.stats.build_s:4.1f} s -> {rate:6.1f} rep-ep/s steady (wall), "
                f"{k * args.epochs / cpu:6.1f} by CPU time ({cpu / wall:.0%} of wall)",
                flush=True,
            )


if __name__ == "__main__":
    main()
