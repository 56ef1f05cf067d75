"""Compaction: a sweep where half the replicas diverge early, with and without compaction.

The sweep: one pack of ``--k`` replicas of a preset, half at learning rates
that train and half at rates that diverge to a non-finite loss within the
first fifth of the epochs. Default: least_squares (n 4096, d 1024, mini-batch
SGD; edge lr 2 / lambda_max = 2, so lr 3-4 grows the error by 2-3x per step
and overflows float32 in 2-4 epochs), whose step and evaluation cost grows
with the number of replicas. (pixel_color's ReLU network dies at a high lr
with a finite loss rather than overflowing, and its dropout would keep the
pack from compacting.) Trained by ``PackTrainer``
as a worker trains a claim (with one shared cache of compiled functions,
compiled by a warm-up pack first so both timings are steady state), once
with compaction and once without, in alternating order (``--repeats``).

Prints the end-to-end training time of each (wall and this process's CPU
time: other jobs on a shared machine inflate wall time only), the ratio,
the epochs at which the diverging replicas ended, and whether the survivors'
records are identical (exactly, or to float32 rounding) with and without.

``--profile`` first prints a pack's steady-state epoch + evaluation time at
several sizes (the figures behind ``packs.compaction.COMPACT_AT``).

Usage:
  python benchmarks/bench_compaction.py --quick     # under a minute on 2 cores
  python benchmarks/bench_compaction.py --profile   # the reference figures
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _out(msg: str = "") -> None:
    print(msg, flush=True)  # a benchmark script's console output


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = int(value)
        except ValueError:
            try:
                out[name] = float(value)
            except ValueError:
                out[name] = value
    return out


def _replicas(k: int, batch: int, good: list[float], bad: list[float]) -> list[Any]:
    from workers.training.interface import ReplicaSpec

    lrs = [good[i % len(good)] for i in range(k - k // 2)] + [bad[i % len(bad)] for i in range(k // 2)]
    return [
        ReplicaSpec(i, {"optimizer": "sgd", "learning_rate": lr, "batch_size": batch}, 1000 + i, 2000 + i)
        for i, lr in enumerate(lrs)
    ]


def _timed(trainer: Any, wl: Any, reps: list[Any], epochs: int) -> tuple[list[Any], float, float]:
    from workers.training.interface import NullObserver

    t, c = time.perf_counter(), time.process_time()
    results = trainer.train(wl, reps, epochs, NullObserver())
    return results, time.perf_counter() - t, time.process_time() - c


def _max_rel(a: Any, b: Any) -> float:
    worst = 0.0
    for x, y in zip(a.epochs, b.epochs, strict=True):
        for f in ("loss", "accuracy", "running_loss", "val_loss", "val_accuracy", "grad_norm"):
            u, v = getattr(x, f), getattr(y, f)
            if u is None or v is None or not (math.isfinite(u) and math.isfinite(v)):
                continue
            worst = max(worst, abs(u - v) / max(abs(u), 1e-12))
    return worst


def profile(wl: Any, batch: int, sizes: list[int], caches: Any) -> None:
    """Steady-state epoch + evaluation time per pack size: what a replica costs at each size."""
    from workers.training.packs import PackTrainer

    _out(f"profile: steady-state epoch + evaluation per pack size (batch {batch}, lr 1e-3)")
    base = None
    for k in sizes:
        reps = _replicas(k, batch, [1e-3], [1e-3])
        tr = PackTrainer(max_replicas=k, caches=caches)
        tr.train(wl, reps[:2], 1, _null())  # compiles, if not yet
        tr = PackTrainer(max_replicas=k, caches=caches)
        _, wall, cpu = _timed(tr, wl, reps, 2)
        s = tr.stats
        per_epoch = (s.step_s + s.eval_s * 2 / 3) / 2  # 3 evaluations (epoch 0 too) for 2 epochs
        base = base or (per_epoch, k)
        _out(
            f"  K {k:>3}: {per_epoch * 1e3:8.1f} ms per epoch (steps {s.step_s / 2 * 1e3:.1f} ms, "
            f"eval {s.eval_s / 3 * 1e3:.1f} ms), {per_epoch / k * 1e3:6.2f} ms per replica; "
            f"cost vs K={base[1]}: {per_epoch / base[0]:.2f} for {k / base[1]:.2f} of the replicas "
            f"(CPU {cpu / wall:.0%} of wall)"
        )


def _null() -> Any:
    from workers.training.interface import NullObserver

    return NullObserver()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smaller sweep (minutes on 2 cores)")
    ap.add_argument("--workload", default="least_squares")
    ap.add_argument(
        "--param",
        action="append",
        default=None,
        help="preset param NAME=VALUE (repeatable); default least_squares n=4096 d=1024",
    )
    ap.add_argument("--k", type=int, default=None, help="replicas (default 32, --quick 16)")
    ap.add_argument("--epochs", type=int, default=None, help="default 20, --quick 15")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--good", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    ap.add_argument("--bad", type=float, nargs="+", default=[3.0, 4.0])
    ap.add_argument("--repeats", type=int, default=3, help="timed pairs, alternating the order")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="also the epoch cost per pack size")
    args = ap.parse_args()
    k = args.k or (16 if args.quick else 32)
    epochs = args.epochs or (15 if args.quick else 20)
    params = _params(args.param or ["n=4096", "d=1024"])

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from workers.training.packs import PackTrainer
    from workers.training.packs.caches import PackCaches
    from workers.workloads.registry import build_preset

    wl = build_preset(args.workload, params)
    caches = PackCaches()
    if args.profile:
        profile(wl, args.batch, [k, (3 * k) // 4, k // 2, k // 4], caches)

    reps = _replicas(k, args.batch, args.good, args.bad)
    _out(
        f"sweep: {args.workload} {params}, SGD, {k} replicas (lr {args.good} train, {args.bad} diverge), "
        f"batch {args.batch}, {epochs} epochs; one pack, compiled functions warmed up first"
    )
    PackTrainer(max_replicas=k, caches=caches).train(wl, reps[:2], 1, _null())
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    results: dict[bool, list[Any]] = {}
    for i in range(args.repeats):
        for compact in (True, False) if i % 2 == 0 else (False, True):
            tr = PackTrainer(max_replicas=k, caches=caches, compaction=compact)
            res, wall, cpu = _timed(tr, wl, reps, epochs)
            times[compact].append((wall, cpu))
            results[compact] = res
            s = tr.stats
            _out(
                f"  compaction {'on ' if compact else 'off'}: {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                f"(steps {s.step_s:.1f} s, eval {s.eval_s:.1f} s, compile {s.compile_s:.1f} s)"
            )
    on, off = results[True], results[False]
    ended = sorted(len(r.epochs) - 1 for r in on if r.status == "nonfinite")
    survivors = [(a, b) for a, b in zip(on, off, strict=True) if a.status == "completed"]
    same = all(a.epochs == b.epochs for a, b in survivors)
    worst = max((_max_rel(a, b) for a, b in survivors), default=0.0)
    how = on[0].training
    _out(f"diverged: {len(ended)} of {k}, at epochs {ended} (first fifth: <= {max(1, epochs // 5)})")
    _out(f"compaction: {how.describe() if how else '?'}")
    best = {c: (min(w for w, _ in t), min(u for _, u in t)) for c, t in times.items()}
    _out(
        f"end to end, best of {args.repeats}: without {best[False][0]:.1f} s, with {best[True][0]:.1f} s "
        f"-> {best[False][0] / best[True][0]:.2f}x by wall, {best[False][1] / best[True][1]:.2f}x by CPU time"
    )
    _out(
        f"survivors ({len(survivors)}): records "
        + ("identical" if same else f"equal to float32 rounding (max relative difference {worst:.1e})")
        + ("" if all(a.status == b.status for a, b in zip(on, off, strict=True)) else "; STATUSES DIFFER")
    )


if __name__ == "__main__":
    main()
