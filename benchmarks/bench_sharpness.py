"""What ``record_sharpness`` costs, and how many Lanczos steps the estimate needs.

Part 1 (overhead): ``PackTrainer`` on the sensor_lstm reference sweep (the
training-packs benchmark's: Adam, learning rate x batch size {2, 8, 32} x
beta_1 {0.5, 0.9} x seeds; ``--scale`` shrinks epochs, seeds and the lr grid),
one pack per batch size as a worker forms them, trained without sharpness and
then with each ``--settings`` entry (``every:iterations:examples[:tolerance[:products]]``,
examples 0 = the whole training set, tolerance - = none). Compile time is excluded: each setting first trains
the pack for one epoch to trace its functions, then the timed run. Prints the
wall time of each and the overhead against the run without sharpness, per
batch size and for the whole sweep (the three packs together).

Part 2 (convergence): the batch-32 pack trained a few epochs, then every
replica's sharpness and preconditioned sharpness estimated from the data
seed's start vector (no warm start: the hardest case) with M = 3 ... 20
Lanczos steps, with exact and with difference products, on the whole set and
on 32 examples; the largest and the median relative error over the replicas
against exact products with M = 60, and the wall time of each estimate.

Part 3 (step): the step of difference products. The packs of the first 64
replicas at batch sizes 8 and 32 (``--scale 1.0``: every learning rate up to
3e-3) and of the 16 at lr 1e-2, trained 10 epochs; every replica's sharpness
by 20 Lanczos steps of central differences at each relative step, against
exact products with M = 60 (the median, 90th percentile and largest
relative error). Too large a step leaves the region where the gradient is
linear, too small a one drowns in float32 rounding (``sharpness.DIFFERENCE_STEP``).

Usage: python benchmarks/bench_sharpness.py --scale 0.2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _out(msg: str = "") -> None:
    print(msg, flush=True)  # a benchmark script's console output


def _replicas(scale: float, batch: int) -> list[Any]:
    from service.core.spec import seed_pairs
    from workers.training.interface import ReplicaSpec

    lrs = [1e-4, 1e-3, 1e-2] if scale < 1 else [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    seeds = max(1, round(8 * scale))
    out = []
    for lr in lrs:
        for b1 in (0.5, 0.9):
            for seed, init, data in seed_pairs(seeds):
                params = {"optimizer": "adam", "learning_rate": lr, "batch_size": batch, "beta_1": b1}
                out.append(ReplicaSpec((lr, b1, seed), params, init, data))
    return out


def _timed_pack(workload: Any, replicas: list[Any], epochs: int, options: Any) -> float:
    from workers.training.interface import NullObserver
    from workers.training.packs import PackTrainer
    from workers.training.training_plan import TrainingPlan

    trainer = PackTrainer(plan=TrainingPlan(sharpness=options))
    trainer.train(workload, replicas, 1, NullObserver())  # traces every function once
    t = time.perf_counter()
    trainer.train(workload, replicas, epochs, NullObserver())
    return time.perf_counter() - t


def _setting(text: str) -> Any:
    """``every:iterations:examples[:tolerance[:products]]`` (examples 0: all; tolerance -: none)."""
    from service.core.spec import RecordSharpness

    every, iters, examples, *rest = text.split(":")
    tol = rest[0] if rest else "-"
    return RecordSharpness.model_validate(
        {
            "every": int(every),
            "iterations": int(iters),
            "examples": int(examples) or None,
            "tolerance": None if tol == "-" else float(tol),
            "products": rest[1] if len(rest) > 1 else "exact",
        }
    )


def overhead(scale: float, settings: list[str], batches: list[int]) -> None:
    from workers.workloads.presets import SensorLSTM

    workload = SensorLSTM({})
    epochs = max(5, round(30 * scale))
    _out(f"== overhead: sensor_lstm, Adam, {epochs} epochs, packs per batch size (compile excluded)")
    _out(f"{'batch':>5} {'replicas':>8} {'setting':>28} {'wall s':>8} {'overhead':>9}")
    totals: dict[str, float] = {}
    for batch in batches:
        reps = _replicas(scale, batch)
        base = _timed_pack(workload, reps, epochs, None)
        _out(f"{batch:>5} {len(reps):>8} {'none':>28} {base:>8.1f} {'':>9}")
        totals["none"] = totals.get("none", 0.0) + base
        for s in settings:
            opts = _setting(s)
            wall = _timed_pack(workload, reps, epochs, opts)
            _out(f"{batch:>5} {len(reps):>8} {s:>28} {wall:>8.1f} {100 * (wall / base - 1):>8.0f}%")
            totals[s] = totals.get(s, 0.0) + wall
    # The whole sweep: every batch size's pack, as a worker trains the reference sweep.
    for s, wall in totals.items():
        extra = "" if s == "none" else f"{100 * (wall / totals['none'] - 1):>8.0f}%"
        _out(f"{'all':>5} {'':>8} {s:>28} {wall:>8.1f} {extra:>9}")


def _pack_after(workload: Any, replicas: list[Any], epochs: int) -> tuple[Any, Any]:
    """A pack trained ``epochs`` epochs without sharpness, and the workload's data: (pack, data)."""
    from service.core.spec import RecordSharpness
    from workers.training.interface import NullObserver
    from workers.training.packs import PackTrainer
    from workers.training.packs import sharpness as pack_sharpness
    from workers.training.training_plan import TrainingPlan

    seen: dict[str, Any] = {}
    real = pack_sharpness.PackSharpness.estimate

    def capture(self: Any, pack: Any, epoch: int) -> None:
        if epoch == epochs:
            seen["pack"], seen["data"] = pack, self._data
        return None

    pack_sharpness.PackSharpness.estimate = capture  # type: ignore[method-assign]
    try:
        trainer = PackTrainer(plan=TrainingPlan(sharpness=RecordSharpness(every=epochs)))
        trainer.train(workload, replicas, epochs, NullObserver())
    finally:
        pack_sharpness.PackSharpness.estimate = real  # type: ignore[method-assign]
    return seen["pack"], seen["data"]


def convergence(epochs: int, scale: float, batch: int) -> None:
    import numpy as np

    from workers.training.packs.sharpness import PackSharpness
    from workers.workloads.presets import SensorLSTM

    workload = SensorLSTM({})
    pack, data = _pack_after(workload, _replicas(scale, batch), epochs)
    _out(
        f"\n== convergence: sensor_lstm pack of {len(pack.replicas)} (Adam, batch {batch}) after {epochs} "
        "epochs, from the data seed's start vector; error against exact products, M = 60"
    )

    def estimates(m: int, products: str, examples: int | None) -> tuple[np.ndarray, float]:
        opts = _setting(f"1:{m}:{examples or 0}:-:{products}")
        t = time.perf_counter()
        got = PackSharpness(opts, data, workload.loss, pack)._estimate(pack)
        return np.array([[a, b] for a, b in got], float), time.perf_counter() - t

    heads = ("sharpness max", "median", "precond. max", "median", "wall s")
    for examples in (None, 32):
        truth, _ = estimates(60, "exact", examples)
        _out(f"examples: {examples or 'all'}")
        _out(f"{'products':>10} {'M':>3} " + " ".join(f"{h:>13}" for h in heads))
        for products in ("exact", "difference"):
            for m in (3, 5, 10, 15, 20):
                got, wall = estimates(m, products, examples)
                err = np.abs(got / truth - 1)
                cols = [np.max(err[:, 0]), np.median(err[:, 0]), np.max(err[:, 1]), np.median(err[:, 1])]
                errs = " ".join(f"{100 * c:>12.2f}%" for c in cols)
                _out(f"{products:>10} {m:>3} {errs} {wall:>13.2f}")


def step(batches: list[int], steps: list[float], epochs: int = 10) -> None:
    import numpy as np

    from workers.training import sharpness
    from workers.training.lanczos import top_eigenvalue
    from workers.training.packs.sharpness import PackSharpness
    from workers.workloads.presets import SensorLSTM

    workload = SensorLSTM({})
    _out(
        f"\n== step: sensor_lstm packs after {epochs} epochs, sharpness by 20 Lanczos steps of central "
        "differences against exact products with M = 60 (relative error over the replicas)"
    )
    _out(f"{'batch':>5} {'replicas':>14} {'step':>7} {'median':>9} {'p90':>9} {'max':>9}")
    default = sharpness.DIFFERENCE_STEP
    for batch in batches:
        everyone = _replicas(1.0, batch)
        for label, reps in (("lr <= 3e-3", everyone[:64]), ("lr 1e-2", everyone[64:])):
            pack, data = _pack_after(workload, reps, epochs)
            by = {}
            for products in ("exact", "difference"):
                by[products] = PackSharpness(_setting(f"1:60:32:-:{products}"), data, workload.loss, pack)
            ex = by["exact"]
            for est in by.values():  # each replica's own subset, as _estimate takes them
                est.use_subsets(pack)
            start = ex._stacked(pack, ex._v)
            truth, _ = top_eigenvalue(ex.matvec(pack.state.weights), start, 60, batched=True)
            try:
                for s in steps:
                    sharpness.DIFFERENCE_STEP = s
                    op = by["difference"].matvec(pack.state.weights)
                    got, _ = top_eigenvalue(op, start, 20, batched=True)
                    err = np.abs(got.numpy() / truth.numpy() - 1)[: len(reps)]
                    cols = (np.median(err), np.percentile(err, 90), np.max(err))
                    _out(f"{batch:>5} {label:>14} {s:>7.0e} " + " ".join(f"{100 * c:>8.2f}%" for c in cols))
            finally:
                sharpness.DIFFERENCE_STEP = default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink epochs, seeds and the lr grid")
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["5:20:0", "5:20:0:-:difference", "5:10:32:-:difference", "5:10:32:1e-2:difference"],
        help="every:iterations:examples[:tolerance[:products]] (examples 0 = the whole training set, "
        "tolerance - = none, products exact or difference)",
    )
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--convergence-epochs", type=int, default=5)
    ap.add_argument("--steps", type=float, nargs="+", default=[1e-6, 3e-6, 5e-6, 1e-5, 3e-5])
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: overhead,convergence,step")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    if "overhead" not in skip:
        overhead(args.scale, args.settings, args.batches)
    if "convergence" not in skip:
        convergence(args.convergence_epochs, args.scale, 32)
    if "step" not in skip:
        step([8, 32], args.steps)


if __name__ == "__main__":
    main()
