"""PackTrainer: splits replicas into packs and trains each pack epoch by epoch."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from service.core.records import RunTraining
from service.core.states import RunStatus
from workers.training.interface import (
    EpochRecord,
    ReplicaResult,
    ReplicaSpec,
    TrainingObserver,
)
from workers.training.packs.caches import PackCaches
from workers.training.packs.compaction import plan_compaction, stacked_size
from workers.training.packs.compiled import CompiledPack, CompileRequest
from workers.training.packs.epoch_function import EpochInputs, OptimizerState
from workers.training.packs.evaluation import EvalResult, Evaluator
from workers.training.packs.pack import Pack
from workers.training.packs.replicas import EpochTotals, PackReplica
from workers.training.packs.sharpness import Estimates, PackSharpness, with_sharpness
from workers.training.packs.sizing import can_pack, choose_pack_size, pack_bucket, pack_cap, uses_xla
from workers.training.packs.stats import PackStats
from workers.training.packs.workload_data import WorkloadData, initial_weights
from workers.training.training_plan import TrainingPlan
from workers.training.vector_optimizers import hyper_from_params, init_slots

logger = logging.getLogger(__name__)

MAX_STEP_POINTS = 500  # as the single trainer: at most ~500 step losses per run

_Records = list[tuple[Hashable, EpochRecord]]


class PackTrainer:
    """Trains replicas in weight-stacked packs (implements ``Trainer``).

    Replicas may differ in every parameter but ``batch_size`` (the worker
    groups them by workload and batch size; mixing raises ``ValueError``).
    Workloads that cannot be packed (``can_pack``) are trained one replica at
    a time by ``SingleTrainer``, with a log line that says why.

    ``caches``: the compiled functions and workloads' data to reuse; by
    default the trainer's own. A worker passes one to every trainer it builds.

    ``compaction``: at an epoch boundary, a pack whose replicas ended goes on
    with its live replicas only when that pays (``packs.compaction``); False
    keeps every pack at its size (the benchmark's comparison).
    """

    def __init__(
        self,
        *,
        max_replicas: int = 64,
        plan: TrainingPlan | None = None,
        jit_compile: bool | None = None,
        device: str = "cpu",
        caches: PackCaches | None = None,
        compaction: bool = True,
    ) -> None:
        if max_replicas < 1:
            raise ValueError("max_replicas must be >= 1")
        self.max_replicas = max_replicas
        self.plan = plan if plan is not None else TrainingPlan()
        # Default (None): XLA on GPUs; on CPU for the epoch function of batch sizes up to
        # XLA_CPU_MAX_BATCH (packs capped at XLA_CPU_PACK_CAP), never for the CPU evaluation.
        # True / False force it everywhere (and leave the pack cap at max_replicas).
        self.jit_compile = jit_compile
        self._gpu = bool(tf.config.list_logical_devices("GPU"))
        self.device = device
        self.caches = caches if caches is not None else PackCaches()
        self.compaction = compaction
        self.stats = PackStats()
        self._fallback: Any = None
        self._sizes_logged: set[tuple[str, int, int]] = set()

    # --------------------------------------------------------------- public

    def train(
        self,
        workload: Any,
        replicas: Sequence[ReplicaSpec],
        epochs: int,
        observer: TrainingObserver,
    ) -> list[ReplicaResult]:
        if not replicas:
            return []
        sizes = {int({**workload.default_params, **r.params}.get("batch_size", 32)) for r in replicas}
        if len(sizes) > 1:
            raise ValueError(
                f"a pack needs one batch size; got {sorted(sizes)} (group replicas by batch size)"
            )
        ok, reason = can_pack(workload, self.caches.workloads)
        if not ok:
            logger.warning(
                "workload %r cannot be trained in packs (%s); training %d replicas one at a time",
                getattr(workload, "name", workload),
                reason,
                len(replicas),
            )
            fallback: list[ReplicaResult] = self._single(reason).train(workload, replicas, epochs, observer)
            return fallback
        # Pack size from the workload's size and the device's memory, max_replicas as the cap.
        batch = next(iter(sizes))
        cap = self.pack_cap(batch)
        size = choose_pack_size(
            workload, len(replicas), self.device, cap=cap, batch_size=batch, workloads=self.caches.workloads
        )
        tag = (str(getattr(workload, "name", "")), batch, size)
        if tag not in self._sizes_logged:
            self._sizes_logged.add(tag)
            logger.info(
                "workload %s batch %d: packs of up to %d replicas (cap %d, device %s)",
                tag[0],
                batch,
                size,
                cap,
                self.device,
            )
        results: list[ReplicaResult] = []
        for start in range(0, len(replicas), size):
            chunk = replicas[start : start + size]
            if observer.should_stop():
                results.extend(ReplicaResult(key=r.key, status=RunStatus.CANCELLED) for r in chunk)
                continue
            results.extend(self._train_pack_safely(workload, chunk, epochs, observer))
        return results

    def uses_xla(self, batch: int) -> tuple[bool, bool]:
        """Whether the epoch and the evaluation functions of a pack at ``batch`` use XLA."""
        return uses_xla(batch, jit_compile=self.jit_compile, gpu=self._gpu)

    def pack_cap(self, batch: int) -> int:
        """The most replicas in one pack at ``batch``: ``max_replicas``, less for XLA on CPU."""
        return pack_cap(batch, self.max_replicas, jit_compile=self.jit_compile, gpu=self._gpu)

    # --------------------------------------------------------------- one pack

    def _single(self, reason: str) -> Any:
        if self._fallback is None or self._fallback.training.fallback_reason != reason:
            from workers.training.single import SingleTrainer

            self._fallback = SingleTrainer(plan=self.plan, fallback_reason=reason)
        return self._fallback

    def _train_pack_safely(
        self, workload: Any, replicas: Sequence[ReplicaSpec], epochs: int, observer: TrainingObserver
    ) -> list[ReplicaResult]:
        try:
            return self._train_pack(workload, replicas, epochs, observer)
        except Exception as exc:
            logger.exception("pack of %d replicas failed", len(replicas))
            tb = traceback.format_exc()
            return [
                ReplicaResult(
                    key=r.key, status=RunStatus.ERROR, error=f"{type(exc).__name__}: {exc}", traceback=tb
                )
                for r in replicas
            ]

    def _train_pack(
        self, workload: Any, specs: Sequence[ReplicaSpec], epochs: int, observer: TrainingObserver
    ) -> list[ReplicaResult]:
        t_start = time.perf_counter()
        stats = PackStats(packs=1)
        data = self.caches.workloads.get(workload)
        pack = self._start_pack(workload, data, specs, epochs, stats)
        compiled, cache_hit = self.caches.compiled.get_or_compile(self._compile_request(workload, data, pack))
        evaluator = Evaluator(compiled, data, stats)
        stride = max(1, math.ceil(epochs * pack.steps / MAX_STEP_POINTS))

        def emit(records: _Records) -> None:
            t = time.perf_counter()
            if records:
                observer.on_epoch(records)
            stats.observer_s += time.perf_counter() - t

        options = self.plan.sharpness
        sharpness = PackSharpness(options, data, workload.loss, pack) if options else None
        emit(self._initial_records(pack, evaluator.run(pack.state.weights), _estimate(sharpness, pack, 0)))
        for epoch in range(1, epochs + 1):
            if not pack.active.any():
                break
            if observer.should_stop():
                pack.stop_all(RunStatus.CANCELLED)
                break
            t_epoch = time.perf_counter()
            lr_tab, totals = self._run_epoch(compiled, data, pack, epoch, stats)
            ev = evaluator.run(pack.state.weights)
            epoch_s = time.perf_counter() - t_epoch
            estimates = _estimate(sharpness, pack, epoch)
            emit(self._epoch_records(pack, epoch, lr_tab, totals, ev, stride, stats, estimates))
            smaller = self._compact(workload, data, pack, compiled, epoch, epochs - epoch, epoch_s)
            if smaller is not None:
                pack, compiled = smaller
                evaluator = evaluator if evaluator.compiled is compiled else Evaluator(compiled, data, stats)
        stats.total_s = time.perf_counter() - t_start
        stats.host_s = stats.total_s - stats.compile_s - stats.step_s - stats.eval_s - stats.build_s
        self.stats.add(stats)
        self._log_pack(pack, stats, cache_hit)
        for r in pack.members:
            r.result.training = RunTraining(
                mode="pack",
                pack_size=len(pack.members),
                resized=list(r.resizes),
                compiled_function="reused" if cache_hit else "compiled",
                compile_seconds=round(stats.compile_s, 3) if stats.compiles else None,
                xla=pack.jit,
            )
        return [r.result for r in pack.members]

    def _compact(
        self,
        workload: Any,
        data: WorkloadData,
        pack: Pack,
        compiled: CompiledPack,
        epoch: int,
        epochs_left: int,
        epoch_s: float,
    ) -> tuple[Pack, CompiledPack] | None:
        """The pack with its live replicas only, and its compiled pair, when that pays (else None)."""
        live = pack.live()
        if not self.compaction or not live:
            return None
        cap = self.pack_cap(pack.batch)
        request = self._compile_request(
            workload, data, pack, k=stacked_size(len(live), pack.k, jit=pack.jit, cap=cap)
        )
        target = plan_compaction(
            live=len(live),
            k=pack.k,
            jit=pack.jit,
            cap=cap,
            has_dropout=data.plan.has_dropout,
            epochs_left=epochs_left,
            epoch_s=epoch_s,
            cached=self.caches.compiled.cached(request),
            compile_s=compiled.compile_s,
        )
        if target is None:
            return None
        smaller, hit = self.caches.compiled.get_or_compile(request) if pack.jit else (compiled, True)
        logger.info(
            "pack compacted after epoch %d: %d -> %d replicas (stacked %d -> %d, compiled function %s)",
            epoch,
            len(pack.replicas),
            target.live,
            pack.k,
            target.k,
            "reused" if hit else "compiled",
        )
        return pack.compacted(live, target.k, epoch=epoch, compiled=not hit), smaller

    def _start_pack(
        self, workload: Any, data: WorkloadData, specs: Sequence[ReplicaSpec], epochs: int, stats: PackStats
    ) -> Pack:
        """Each replica's schedule and initial weights, stacked (and padded under XLA)."""
        t0 = time.perf_counter()
        reps: list[PackReplica] = []
        weights0: list[list[np.ndarray]] = []
        for spec in specs:
            reps.append(PackReplica.prepare(spec, workload, data.n, self.plan, epochs))
            weights0.append(initial_weights(workload, data, spec.init_seed))
        stats.build_s += time.perf_counter() - t0
        batch = reps[0].order.batch_size
        jit, jit_eval = self.uses_xla(batch)
        # Without XLA the replica axis is dynamic: one compiled function serves every pack size,
        # so packs are never padded. XLA needs static shapes: packs are padded to a bucket (a
        # power of two) so that a few compilations serve every size.
        k = pack_bucket(len(reps), max(len(reps), self.pack_cap(batch))) if jit else len(reps)
        pad = k - len(reps)
        # Dummy replicas copy replica 0 and stay masked out.
        hyper = hyper_from_params([r.resolved for r in reps] + [reps[0].resolved] * pad)
        w = [
            tf.constant(np.stack([ws[j] for ws in weights0] + [weights0[0][j]] * pad))
            for j in range(len(weights0[0]))
        ]
        m, v = init_slots(w)
        # Dropout masks come from a stateless RNG keyed by the pack (its replicas' init seeds)
        # and the step: reproducible, and a lone run's in distribution.
        seed = np.random.SeedSequence([r.spec.init_seed for r in reps]).generate_state(1)[0]
        return Pack(
            replicas=reps,
            k=k,
            batch=batch,
            steps=reps[0].order.steps_per_epoch,
            jit=jit,
            jit_eval=jit_eval,
            hyper=hyper,
            hyper_t=hyper.as_tensors(),
            state=OptimizerState(w, m, v, tf.constant(0.0)),
            active=np.array([True] * len(reps) + [False] * pad),
            dropout_seed=tf.constant(int(seed & 0x7FFFFFFF), tf.int32),
        )

    def _compile_request(
        self, workload: Any, data: WorkloadData, pack: Pack, *, k: int | None = None
    ) -> CompileRequest:
        k = pack.k if k is None else k
        return CompileRequest(
            plan=data.plan,
            loss=workload.loss,
            kind=data.kind,
            batch=pack.batch,
            k=k if pack.jit else None,
            k_budget=max(len(pack.members), k, self.pack_cap(pack.batch)),
            n=data.n,
            n_eval_max=data.n_eval_max,
            x_spec=tf.TensorSpec(data.x.shape, tf.float32),
            y_spec=tf.TensorSpec(data.y.shape, data.y.dtype),
            kinds=pack.hyper.kinds,
            jit=pack.jit,
            jit_eval=pack.jit_eval,
        )

    def _initial_records(self, pack: Pack, ev: EvalResult, estimates: Estimates | None) -> _Records:
        records: _Records = []
        for i, r in enumerate(pack.replicas):
            rec = with_sharpness(r.initial_record(ev, i), estimates, i, r.resolved)
            r.result.epochs.append(rec)
            records.append((r.spec.key, rec))
            if not math.isfinite(rec.loss):
                pack.stop(i, RunStatus.NONFINITE)
        return records

    def _run_epoch(
        self, compiled: CompiledPack, data: WorkloadData, pack: Pack, epoch: int, stats: PackStats
    ) -> tuple[np.ndarray, EpochTotals]:
        """One compiled epoch call: the pack's state moves on; returns the lr table used and totals."""
        perms = [np.concatenate(r.order.next_epoch()) for r in pack.replicas]
        perm = np.stack(pack.padded(perms)).astype(np.int32)
        first_step = (epoch - 1) * pack.steps
        lr_rows = [r.learning_rates(first_step, pack.steps) for r in pack.replicas]
        lr_tab = np.stack(pack.padded(lr_rows), axis=1)
        t = time.perf_counter()
        inputs = EpochInputs(
            order=tf.constant(perm),
            learning_rates=tf.constant(lr_tab),
            hyper=pack.hyper_t,
            active=tf.constant(pack.active),
            dropout_seed=pack.dropout_seed,
            batch_size=tf.constant(pack.batch, tf.int32),
        )
        out = compiled.epoch_fn(data.x, data.y, pack.state, inputs)
        pack.state = out.state
        totals = EpochTotals(
            active=out.active.numpy(),
            bad_loss=out.bad_loss.numpy(),
            sum_loss=out.sum_loss.numpy(),
            sum_grad_norm=out.sum_grad_norm.numpy(),
            count=out.count.numpy(),
            step_losses=out.step_losses.numpy() if self.plan.record_steps else None,
        )
        dt = time.perf_counter() - t
        if compiled.epoch_compiled:
            stats.step_s += dt
        else:
            compiled.epoch_compiled = True
            compiled.compile_s = dt
            stats.compile_s += dt
            stats.compiles += 1
        return lr_tab, totals

    def _epoch_records(
        self,
        pack: Pack,
        epoch: int,
        lr_tab: np.ndarray,
        totals: EpochTotals,
        ev: EvalResult,
        stride: int,
        stats: PackStats,
        estimates: Estimates | None = None,
    ) -> _Records:
        """The records of the replicas still training; stops those whose loss is non-finite."""
        records: _Records = []
        first_step = (epoch - 1) * pack.steps
        monitor = self.plan.schedule_options.plateau_monitor
        for i, r in enumerate(pack.replicas):
            if not r.training:
                continue
            if totals.step_losses is not None:
                r.keep_step_losses(totals.step_losses[:, i], first_step, stride)
            rec = r.epoch_record(epoch, i, totals, ev, float(lr_tab[pack.steps - 1, i]))
            rec = with_sharpness(rec, estimates, i, r.resolved)
            r.result.epochs.append(rec)
            records.append((r.spec.key, rec))
            stats.replica_epochs += 1
            if not math.isfinite(rec.loss):
                pack.stop(i, RunStatus.NONFINITE)
                continue
            r.follow_plateau(rec, monitor)
        return records

    def _log_pack(self, pack: Pack, stats: PackStats, cache_hit: bool) -> None:
        # One line per pack: the benchmark reads these from the workers' logs.
        logger.info(
            "pack done: k=%d bucket=%d batch=%d replica_epochs=%d total_s=%.3f step_s=%.3f eval_s=%.3f "
            "compile_s=%.3f build_s=%.3f host_s=%.3f observer_s=%.3f cache_hit=%d xla=%d sizes=%s",
            len(pack.members),
            pack.first_k,
            pack.batch,
            stats.replica_epochs,
            stats.total_s,
            stats.step_s,
            stats.eval_s,
            stats.compile_s,
            stats.build_s,
            stats.host_s,
            stats.observer_s,
            int(cache_hit),
            int(pack.jit),
            ">".join(str(n) for n in [len(pack.members), *(r.size for r in pack.resizes)]),
        )


def _estimate(sharpness: PackSharpness | None, pack: Pack, epoch: int) -> Estimates | None:
    """The pack's sharpness estimates at ``epoch`` when the sweep records sharpness."""
    if sharpness is None or not pack.active.any():
        return None
    return sharpness.estimate(pack, epoch)
