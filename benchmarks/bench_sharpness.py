"""What ``record_sharpness`` costs, and how many power iterations the estimate needs.

Part 1 (overhead): ``PackTrainer`` on the sensor_lstm reference sweep (the
training-packs benchmark's: Adam, learning rate x batch size {2, 8, 32} x
beta_1 {0.5, 0.9} x seeds; ``--scale`` shrinks epochs, seeds and the lr grid),
one pack per batch size as a worker forms them, trained without sharpness and
then with each ``--settings`` entry (``every:iterations:examples[:tolerance]``,
examples 0 = the whole training set). Compile time is excluded: each setting first trains
the pack for one epoch to trace its functions, then the timed run. Prints the
wall time of each and the overhead against the run without sharpness.

Part 2 (convergence): one replica trained for a few epochs, then its sharpness
(and preconditioned sharpness) estimated from the data seed's start vector
with M = 1, 2, 5, 10, 20, 40 power iterations against M = 200 ("cold"); and
the same run measured every epoch with M iterations each, every estimate
warm-started from the previous epoch's vector as a sweep does ("warm"),
against the same with M = 200.

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


def overhead(scale: float, settings: list[str], batches: list[int]) -> None:
    from service.core.spec import RecordSharpness
    from workers.workloads.presets import SensorLSTM

    workload = SensorLSTM({})
    epochs = max(5, round(30 * scale))
    _out(f"== overhead: sensor_lstm, Adam, {epochs} epochs, packs per batch size (compile excluded)")
    _out(f"{'batch':>5} {'replicas':>8} {'setting':>18} {'wall s':>8} {'overhead':>9}")
    for batch in batches:
        reps = _replicas(scale, batch)
        base = _timed_pack(workload, reps, epochs, None)
        _out(f"{batch:>5} {len(reps):>8} {'none':>18} {base:>8.1f} {'':>9}")
        for s in settings:
            every, iters, examples, *tol = s.split(":")
            opts = RecordSharpness(
                every=int(every),
                iterations=int(iters),
                examples=int(examples) or None,
                tolerance=float(tol[0]) if tol else None,
            )
            wall = _timed_pack(workload, reps, epochs, opts)
            _out(f"{batch:>5} {len(reps):>8} {s:>18} {wall:>8.1f} {100 * (wall / base - 1):>8.0f}%")


def _cold_estimates(workload: Any, spec: Any, epochs: int, ms: list[int]) -> list[Any]:
    """Train ``epochs`` epochs without sharpness, then estimate from the data seed's start vector."""
    from service.core.spec import RecordSharpness
    from workers.training.interface import NullObserver
    from workers.training.single import SingleTrainer
    from workers.training.training_plan import TrainingPlan

    trainer = SingleTrainer()
    trainer.train(workload, [spec], epochs, NullObserver())
    entry = next(iter(trainer._compiled.values()))  # the replica's model and optimizer, as trained
    data = trainer._dataset(workload)
    params = {**workload.default_params, **spec.params}
    out = []
    for m in ms:
        trainer.plan = TrainingPlan(sharpness=RecordSharpness(iterations=m))
        estimator = trainer._sharpness_for(entry, data, params, spec)
        assert estimator is not None
        out.append(estimator.estimate(0, float(params["learning_rate"])))
    return out


def convergence(epochs: int) -> None:
    from service.core.spec import RecordSharpness
    from workers.training.interface import NullObserver, ReplicaSpec
    from workers.training.single import SingleTrainer
    from workers.training.training_plan import TrainingPlan
    from workers.workloads.presets import SensorLSTM

    workload = SensorLSTM({})
    spec = ReplicaSpec(0, {"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 8}, 1, 2)
    ms = [1, 2, 5, 10, 20, 40, 200]
    _out(f"\n== convergence: sensor_lstm, Adam lr 3e-3, batch 8, after {epochs} epochs (M=200 = reference)")
    t = time.perf_counter()
    cold = _cold_estimates(workload, spec, epochs, ms)
    truth = cold[-1]
    _out(
        f"cold estimates: {time.perf_counter() - t:.1f} s; reference sharpness {truth.sharpness:.4g}, "
        f"preconditioned {truth.preconditioned_sharpness:.4g}"
    )
    # A sweep's estimates are warm-started from the previous measured epoch's vector (every: 1 here).
    warm_truth = SingleTrainer(plan=TrainingPlan(sharpness=RecordSharpness(iterations=200)))
    ref_curve = warm_truth.train(workload, [spec], epochs, NullObserver())[0].epochs[epochs]
    heads = ("cold sharpness", "preconditioned", "warm (every: 1)", "warm precond.")
    _out(f"{'M':>4} " + " ".join(f"{h:>15}" for h in heads))
    for m, got in zip(ms[:-1], cold[:-1], strict=True):
        warm = SingleTrainer(plan=TrainingPlan(sharpness=RecordSharpness(iterations=m)))
        w = warm.train(workload, [spec], epochs, NullObserver())[0].epochs[epochs]
        errs = [
            abs(got.sharpness / truth.sharpness - 1),
            abs(got.preconditioned_sharpness / truth.preconditioned_sharpness - 1),
            abs(w.sharpness / ref_curve.sharpness - 1),
            abs(w.preconditioned_sharpness / ref_curve.preconditioned_sharpness - 1),
        ]
        _out(f"{m:>4} " + " ".join(f"{100 * e:>14.2f}%" for e in errs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink epochs, seeds and the lr grid")
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["5:20:0", "5:20:0:1e-3", "5:5:32"],
        help="every:iterations:examples[:tolerance] (examples 0 = the whole training set)",
    )
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--convergence-epochs", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: overhead,convergence")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    if "overhead" not in skip:
        overhead(args.scale, args.settings, args.batches)
    if "convergence" not in skip:
        convergence(args.convergence_epochs)


if __name__ == "__main__":
    main()
