"""Training packs: K replicas trained together in one compiled step.

Small models spend their time in per-op framework overhead, not arithmetic
(DESIGN §2). ``PackTrainer`` builds every replica's Keras model with its own
seed (exactly as the single trainer does), stacks the weights along a leading
replica axis and trains all of them with one compiled function per epoch (XLA on GPUs, and
on CPU for the smallest batch sizes: ``XLA_CPU_MAX_BATCH``):
each replica gathers its own mini-batches from its own permutation, runs the
same forward pass (``_stacked_model``), takes its own optimizer step with its
own hyperparameters (``vector_optimizers``) and learning-rate schedule, and is
evaluated on the full training (and validation) set after every epoch.
Without XLA, LSTMs over long sequences run as TensorFlow's fused ``BlockLSTM``
kernel, one call per replica (``_lstm_fused``: 2x the batched scan at batch 32).

Semantics are those of ``workers.training.single`` (which see): effective
params ``{**workload.default_params, **replica.params}``, seeds and batch
order from ``data_order``, losses from ``metrics``, optimizers and schedules
from ``optimizers`` (schedules are evaluated with the very same Keras schedule
objects, once per run, into a per-step table), records per epoch, a replica
stops at its first non-finite mini-batch or epoch loss while the others go
on. Differences, by design:

- ``observer.on_epoch`` is called once per epoch with the records of every
  replica still training (one bulk write per epoch for the worker).
- Dropout masks come from a stateless RNG keyed by the pack and the step, so
  a model with dropout reproduces the lone run *in distribution*, not bit for
  bit.
- Weight-stacked arithmetic (batched matmuls instead of K separate ones)
  rounds differently in the last bit. Well-conditioned runs agree with the
  single trainer to float32 rounding; chaotic runs (high learning rate)
  amplify that rounding, so they are reproducible in distribution over seeds,
  not curve for curve.

Hyperparameters (learning rates per step, betas, epsilon, rho, momentum,
nesterov, weight decay, clipnorm) are tensor inputs, not graph constants, so
one compiled function serves every pack with the same architecture and set
of optimizer kinds. Without XLA the batch size and the number of replicas
are inputs too (dynamic batch and replica axes), so every batch size, every
pack size and the epoch's short last batch share one step graph, and packs
are never padded. With XLA (static shapes) the batch size and the pack size
are part of the key: the last batch has its own step copy, and pack sizes
are padded to a bucket (powers of two up to ``max_replicas``) with masked
dummy replicas to reuse compilations. Stopped replicas are masked, never
recompiled.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from service.core.spec import ScheduleOptions
from workers.training._stacked_model import StackedPlan, Unpackable, lstm_eval_in_loop, plan_model
from workers.training.data_order import BatchOrder, build_initial_model
from workers.training.metrics import LabelKind, label_kind, per_sample_loss
from workers.training.optimizers import PlateauController, build_learning_rate, resolve_optimizer_params
from workers.training.types import EpochRecord, ReplicaResult, ReplicaSpec, TrainingObserver
from workers.training.vector_optimizers import (
    HYPER_NAMES,
    OptimizerKind,
    apply_updates,
    global_norm,
    hyper_from_params,
    init_slots,
)

logger = logging.getLogger(__name__)

MAX_STEP_POINTS = 500  # as the single trainer: at most ~500 step losses per run
# Float32 values the full-set evaluation may hold at once (per call), ~256 MB.
_EVAL_BUDGET_FLOATS = 64 * 1024 * 1024
_COMPILED_CACHE = 16
# On CPU (default), batch sizes up to XLA_CPU_MAX_BATCH train with an XLA-compiled epoch in
# packs of at most XLA_CPU_PACK_CAP replicas. sensor_lstm on the 2-core machine, steady-state
# replica-epochs/s by CPU time (benchmarks/README.md, profile_packs): batch 2, XLA K=8/16/32/64
# 28.2/28.5/23.1/18.9 vs without XLA K=16/32/64 15.5/16.9/20.0 (two workers at once: XLA K=16
# 28, without K=64 16); batch 4 even (XLA K=16 28.6, without K=32 29.1); batch 8 XLA K=16 26.4
# vs without K=64 30.5; batch 32 XLA 5x slower (its CPU dot emitter). XLA compiles in 3-10 s
# vs 2-5 s, once per batch size (shapes are static under XLA). Evaluation stays without XLA on
# CPU (the forward-only loop ran 2x slower under it).
XLA_CPU_MAX_BATCH = 2
XLA_CPU_PACK_CAP = 16
_INIT_CACHE = 1024

__all__ = ["PackTrainer", "PackStats", "can_pack", "choose_pack_size", "pack_bucket"]


# ------------------------------------------------------------------ public helpers


def can_pack(workload: Any) -> tuple[bool, str]:
    """Whether the workload's model can be trained weight-stacked, and why not."""
    try:
        _workload_info(workload)
    except Unpackable as exc:
        return False, str(exc)
    return True, ""


def pack_bucket(k: int, max_replicas: int) -> int:
    """The padded pack size for k replicas: the next power of two, at most max_replicas."""
    if k < 1:
        raise ValueError("a pack needs at least one replica")
    b = 1
    while b < k:
        b *= 2
    return max(k, min(b, max_replicas))


def _device_memory_bytes(device: str) -> int:
    if device.startswith("gpu"):
        try:
            idx = int(device[4:]) if ":" in device else 0
            info = tf.config.experimental.get_memory_info(f"GPU:{idx}")
            # ``peak`` is what TF has touched; the total is not exposed, assume 16 GiB
            # when the device has not allocated yet (a conservative modern GPU).
            return max(16 * 2**30, int(info.get("peak", 0)))
        except (ValueError, RuntimeError):
            return 16 * 2**30
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def choose_pack_size(
    workload: Any, n_replicas: int, device: str = "cpu", cap: int = 64, *, batch_size: int = 32
) -> int:
    """How many replicas to train in one pack (1 when the workload cannot be packed).

    Heuristic: a replica costs its weights four times over (weights, two
    optimizer slots, gradients) plus the activations of one mini-batch kept
    for the backward pass, counted from the plan (inputs, each layer's
    outputs, the gates of recurrent layers over all timesteps), in float32.
    A pack may use a quarter of the device's memory (shared with other
    workers and the evaluation pass). ``cap`` (the ``pack_max_replicas``
    setting) bounds it; on CPU packs of 16-64 were fastest on the small
    presets and 256 slower (DESIGN §2), hence the default cap of 64
    (``PackTrainer.pack_cap`` passes 16 for the batch sizes it runs under XLA
    on CPU).
    """
    ok, _ = can_pack(workload)
    if not ok or n_replicas <= 1:
        return 1
    plan = _workload_info(workload).plan
    per_replica = 4 * (4 * plan.n_params + batch_size * plan.activation_floats_per_sample())
    budget = _device_memory_bytes(device) // 4
    by_memory = max(1, budget // max(1, per_replica))
    return int(max(1, min(cap, n_replicas, by_memory)))


@dataclass
class PackStats:
    """Where a trainer's wall time went (the benchmark reports these)."""

    packs: int = 0
    replica_epochs: int = 0
    compile_s: float = 0.0  # first call of each new compiled function (trace + XLA compile)
    step_s: float = 0.0  # compiled epoch calls, compilations excluded
    eval_s: float = 0.0  # full-set evaluations, compilations excluded
    build_s: float = 0.0  # building/seeding Keras models for initial weights
    host_s: float = 0.0  # everything else inside train(): permutations, records, observer
    observer_s: float = 0.0  # part of host_s spent in the observer
    total_s: float = 0.0
    compiles: int = 0

    def add(self, other: PackStats) -> None:
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))


# ------------------------------------------------------------------ per-workload info


@dataclass
class _WorkloadInfo:
    plan: StackedPlan
    x: tf.Tensor
    y: tf.Tensor
    x_val: tf.Tensor | None
    y_val: tf.Tensor | None
    n: int
    kind: LabelKind
    init_weights: OrderedDict[int, list[np.ndarray]] = field(default_factory=OrderedDict)


_INFO: weakref.WeakKeyDictionary[Any, _WorkloadInfo] = weakref.WeakKeyDictionary()
_INFO_BY_ID: OrderedDict[int, tuple[Any, _WorkloadInfo]] = OrderedDict()


def _labels(y: np.ndarray, kind: LabelKind) -> np.ndarray:
    if kind == "integer":
        return y.reshape(-1).astype(np.int32)
    return y.astype(np.float32, copy=False)


def _workload_info(workload: Any) -> _WorkloadInfo:
    """Data tensors and stacked plan of a workload, cached per workload object."""
    try:
        hit = _INFO.get(workload)
    except TypeError:  # unhashable or not weak-referenceable
        entry = _INFO_BY_ID.get(id(workload))
        hit = entry[1] if entry is not None and entry[0] is workload else None
    if hit is not None:
        return hit
    ds = workload.dataset()
    x = np.asarray(ds.x_train).astype(np.float32, copy=False)
    kind = label_kind(np.asarray(ds.y_train), int(workload.num_classes))
    model = build_initial_model(workload, 0, x[:1])
    plan, _ = plan_model(model)
    if workload.loss not in (
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "mse",
        "mean_squared_error",
    ):
        raise Unpackable(f"loss {workload.loss!r} is not supported by training packs")
    has_val = ds.x_val is not None and ds.y_val is not None and len(ds.x_val) > 0
    info = _WorkloadInfo(
        plan=plan,
        x=tf.constant(x),
        y=tf.constant(_labels(np.asarray(ds.y_train), kind)),
        x_val=tf.constant(np.asarray(ds.x_val).astype(np.float32, copy=False)) if has_val else None,
        y_val=tf.constant(_labels(np.asarray(ds.y_val), kind)) if has_val else None,
        n=int(x.shape[0]),
        kind=kind,
    )
    try:
        _INFO[workload] = info
    except TypeError:
        _INFO_BY_ID[id(workload)] = (workload, info)
        while len(_INFO_BY_ID) > 8:
            _INFO_BY_ID.popitem(last=False)
    return info


def _initial_weights(workload: Any, info: _WorkloadInfo, init_seed: int) -> list[np.ndarray]:
    """The weights ``build_initial_model(workload, init_seed)`` draws, cached per seed.

    Sweeps reuse the same init seeds in every configuration (common random
    numbers), so each seed's model is built once per workload, not once per run.
    """
    hit = info.init_weights.get(init_seed)
    if hit is not None:
        info.init_weights.move_to_end(init_seed)
        return hit
    model = build_initial_model(workload, init_seed, info.x.numpy()[:1])
    plan, weights = plan_model(model)
    if plan.signature != info.plan.signature:
        raise Unpackable("the workload builds models of different architectures for different seeds")
    info.init_weights[init_seed] = weights
    while len(info.init_weights) > _INIT_CACHE:
        info.init_weights.popitem(last=False)
    return weights


# ------------------------------------------------------------------ compiled functions


@dataclass
class _Compiled:
    epoch_fn: Callable[..., Any]
    eval_fn: Callable[..., Any]
    eval_chunk: int
    epoch_compiled: bool = False
    eval_compiled: bool = False


_COMPILED: OrderedDict[Hashable, _Compiled] = OrderedDict()


def _eval_floats_per_sample(plan: StackedPlan, k: int, *, fused: bool) -> int:
    """Float32 values one evaluated sample holds at the peak, for a pack of k replicas.

    Layers run stacked (all k replicas at once), except a fused LSTM (``fused``:
    evaluation without XLA), which runs one replica at a time and keeps all seven
    of BlockLSTM's per-timestep outputs (``_lstm_fused``).
    """
    shape = list(plan.input_shape)
    peak = int(np.prod(shape))
    one_replica = 0
    for layer in plan.layers:
        if layer.kind == "dense":
            shape = shape[:-1] + [layer.units]
        elif layer.kind in ("lstm", "gru", "simple_rnn"):
            gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[layer.kind]
            if layer.kind == "lstm" and lstm_eval_in_loop(layer, shape[0]):
                if fused:
                    one_replica = max(one_replica, 7 * shape[0] * layer.units)
                # Input projected inside the time loop: one timestep's gates (and h, c) at a time.
                peak = max(peak, layer.units * (gates + 2))
            else:  # the input projection of every timestep is materialised
                peak = max(peak, shape[0] * layer.units * gates)
            shape = [shape[0], layer.units] if layer.return_sequences else [layer.units]
        elif layer.kind == "flatten":
            shape = [int(np.prod(shape))]
        peak = max(peak, int(np.prod(shape)))
    return 2 * max(k * peak, one_replica)


def _make_compiled(
    plan: StackedPlan,
    loss_name: str,
    kind: LabelKind,
    batch: int,
    k: int | None,
    k_budget: int,
    n: int,
    n_eval_max: int,
    x_spec: tf.TensorSpec,
    y_spec: tf.TensorSpec,
    kinds: frozenset[OptimizerKind],
    jit: bool,
    jit_eval: bool,
) -> _Compiled:
    loss_fn = per_sample_loss(loss_name)
    full, tail = divmod(n, batch)
    steps = full + (1 if tail else 0)
    w_specs = [tf.TensorSpec((k, *s), tf.float32) for s in plan.weight_shapes]
    hyper_specs = {name: tf.TensorSpec((k,), tf.float32) for name in HYPER_NAMES}

    def one_step(
        x: tf.Tensor,
        y: tf.Tensor,
        w: list[tf.Tensor],
        m: list[tf.Tensor],
        v: list[tf.Tensor],
        iters: tf.Tensor,
        idx: tf.Tensor,
        lr: tf.Tensor,
        hyper: dict[str, tf.Tensor],
        active: tf.Tensor,
        seed: tf.Tensor,
    ) -> tuple[list[tf.Tensor], list[tf.Tensor], list[tf.Tensor], tf.Tensor, tf.Tensor, tf.Tensor]:
        xb = tf.gather(x, idx)
        yb = tf.gather(y, idx)
        with tf.GradientTape() as tape:
            tape.watch(w)
            out, _ = plan.forward(w, xb, shared_input=False, training=True, seed=seed, fused_rnn=not jit)
            per = tf.reduce_mean(loss_fn(yb, out), axis=1)  # [K] mean over the batch
            total = tf.reduce_sum(per)  # replicas are independent: d total / d w_k = d per_k / d w_k
        grads = tape.gradient(total, w)
        gn = global_norm(grads)
        ok = active & tf.math.is_finite(per)
        w2, m2, v2 = apply_updates(w, grads, m, v, iters, lr, hyper, kinds, active=ok)
        return w2, m2, v2, per, gn, ok

    def epoch(
        x: tf.Tensor,
        y: tf.Tensor,
        w: list[tf.Tensor],
        m: list[tf.Tensor],
        v: list[tf.Tensor],
        iters: tf.Tensor,
        perm: tf.Tensor,
        lr_tab: tf.Tensor,
        hyper: dict[str, tf.Tensor],
        active: tf.Tensor,
        dseed: tf.Tensor,
        bsz: tf.Tensor,
    ) -> dict[str, Any]:
        zeros = tf.zeros(tf.shape(active), tf.float32)
        # Without XLA the batch size (``bsz``) and the replica axis are inputs, not constants:
        # one compiled epoch serves every batch size and pack size. With XLA shapes are static.
        n_steps = (n + bsz - 1) // bsz if not jit else steps
        losses = tf.TensorArray(tf.float32, size=n_steps)

        def run(i: tf.Tensor, idx: tf.Tensor, state: tuple[Any, ...]) -> tuple[Any, ...]:
            w, m, v, iters, active, bad_loss, sum_loss, sum_gn, cnt, losses = state
            seed = tf.stack([dseed, tf.cast(iters, tf.int32)])
            w, m, v, per, gn, ok = one_step(x, y, w, m, v, iters, idx, lr_tab[i], hyper, active, seed)
            newly_bad = active & ~ok
            bad_loss = tf.where(newly_bad, per, bad_loss)
            sum_loss = sum_loss + tf.where(active, per, zeros)
            sum_gn = sum_gn + tf.where(active, gn, zeros)
            cnt = cnt + tf.cast(active, tf.float32)
            losses = losses.write(i, per)
            return (w, m, v, iters + 1.0, ok, bad_loss, sum_loss, sum_gn, cnt, losses)

        state = (list(w), list(m), list(v), iters, active, zeros, zeros, zeros, zeros, losses)
        n_full, n_tail = full, tail
        if not jit:
            # One copy of the step for every batch, the short last one included: without XLA
            # the batch axis may be dynamic, so the last step is Keras' partial batch as is
            # (the same mean over its real examples) and the epoch compiles one step graph,
            # not two (compile time roughly halves; no padded arithmetic either).

            def body_dyn(i: tf.Tensor, *st: Any) -> tuple[Any, ...]:
                size = tf.minimum(bsz, n - i * bsz)
                idx = tf.slice(perm, tf.stack([0, i * bsz]), tf.stack([-1, size]))  # every replica
                return (i + 1, *run(i, idx, tuple(st)))

            out = tf.while_loop(lambda i, *_: i < n_steps, body_dyn, (tf.constant(0), *state))
            state = tuple(out[1:])
            n_full = n_tail = 0
        if n_full:

            def body(i: tf.Tensor, *st: Any) -> tuple[Any, ...]:
                idx = tf.slice(perm, tf.stack([0, i * batch]), [k, batch])
                return (i + 1, *run(i, idx, tuple(st)))

            out = tf.while_loop(lambda i, *_: i < full, body, (tf.constant(0), *state))
            state = tuple(out[1:])
        if n_tail:
            state = run(tf.constant(full), perm[:, full * batch :], state)
        w, m, v, iters, active, bad_loss, sum_loss, sum_gn, cnt, losses = state
        return {
            "w": w,
            "m": m,
            "v": v,
            "iters": iters,
            "active": active,
            "bad_loss": bad_loss,
            "sum_loss": sum_loss,
            "sum_gn": sum_gn,
            "count": cnt,
            "step_losses": losses.stack(),
        }

    epoch_sig = [
        x_spec,
        y_spec,
        w_specs,
        w_specs,
        w_specs,
        tf.TensorSpec((), tf.float32),
        tf.TensorSpec((k, n), tf.int32),
        tf.TensorSpec((None if not jit else steps, k), tf.float32),
        hyper_specs,
        tf.TensorSpec((k,), tf.bool),
        tf.TensorSpec((), tf.int32),
        tf.TensorSpec((), tf.int32),
    ]

    per_sample = _eval_floats_per_sample(plan, k_budget, fused=not jit_eval)
    max_chunk = max(1, _EVAL_BUDGET_FLOATS // max(1, per_sample))
    n_chunks = math.ceil(n_eval_max / max_chunk)
    chunk = math.ceil(n_eval_max / n_chunks)

    def evaluate(
        x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor, w: list[tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        out, _ = plan.forward(w, x, shared_input=True, training=False, fused_rnn=not jit_eval)
        yk = tf.broadcast_to(y[None], tf.concat([tf.shape(w[0])[:1], tf.shape(y)], 0))
        per = tf.cast(loss_fn(yk, out), tf.float64)  # [K, chunk]
        maskf = tf.cast(mask, tf.float64)[None, :]
        loss_sum = tf.reduce_sum(per * maskf, axis=1)
        if kind == "one_hot":
            hit = tf.equal(tf.argmax(yk, axis=-1), tf.argmax(out, axis=-1))
        elif kind == "integer":
            hit = tf.equal(tf.cast(yk, tf.int64), tf.argmax(out, axis=-1))
        else:
            hit = tf.zeros(tf.shape(per), tf.bool)
        return loss_sum, tf.reduce_sum(tf.cast(hit, tf.float64) * maskf, axis=1)

    eval_sig = [
        tf.TensorSpec((chunk, *x_spec.shape[1:]), tf.float32),
        tf.TensorSpec((chunk, *y_spec.shape[1:]), y_spec.dtype),
        tf.TensorSpec((chunk,), tf.bool),
        w_specs,
    ]
    return _Compiled(
        epoch_fn=tf.function(epoch, input_signature=epoch_sig, jit_compile=jit, reduce_retracing=False),
        eval_fn=tf.function(evaluate, input_signature=eval_sig, jit_compile=jit_eval),
        eval_chunk=chunk,
    )


# ------------------------------------------------------------------ the trainer


@dataclass
class _Replica:
    spec: ReplicaSpec
    params: dict[str, Any]
    resolved: dict[str, Any]
    order: BatchOrder
    lr_table: np.ndarray  # [epochs * steps] float32, the lr each update uses
    plateau: PlateauController | None
    plateau_lr: float
    result: ReplicaResult
    training: bool = True


class PackTrainer:
    """Trains replicas in weight-stacked packs (implements ``Trainer``).

    Replicas may differ in every parameter but ``batch_size`` (the worker
    groups them by workload and batch size; mixing raises ``ValueError``).
    Workloads that cannot be packed (``can_pack``) are trained one replica at
    a time by ``SingleTrainer``, with a log line that says why.
    """

    def __init__(
        self,
        *,
        max_replicas: int = 64,
        schedule_options: Mapping[str, Any] | None = None,
        record_steps: bool = False,
        jit_compile: bool | None = None,
        device: str = "cpu",
    ) -> None:
        if max_replicas < 1:
            raise ValueError("max_replicas must be >= 1")
        self.max_replicas = max_replicas
        self.schedule_options = ScheduleOptions(**dict(schedule_options or {})).model_dump()
        self.record_steps = record_steps
        # Default (None): XLA on GPUs; on CPU for the epoch function of batch sizes up to
        # XLA_CPU_MAX_BATCH (packs capped at XLA_CPU_PACK_CAP), never for the CPU evaluation.
        # True / False force it everywhere (and leave the pack cap at max_replicas).
        self.jit_compile = jit_compile
        self._gpu = bool(tf.config.list_logical_devices("GPU"))
        self.device = device
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
        ok, reason = can_pack(workload)
        if not ok:
            logger.warning(
                "workload %r cannot be trained in packs (%s); training %d replicas one at a time",
                getattr(workload, "name", workload),
                reason,
                len(replicas),
            )
            fallback: list[ReplicaResult] = self._single().train(workload, replicas, epochs, observer)
            return fallback
        # Pack size from the workload's size and the device's memory, max_replicas as the cap.
        batch = next(iter(sizes))
        cap = self.pack_cap(batch)
        size = choose_pack_size(workload, len(replicas), self.device, cap=cap, batch_size=batch)
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
                results.extend(ReplicaResult(key=r.key, status="cancelled") for r in chunk)
                continue
            results.extend(self._train_pack_safely(workload, chunk, epochs, observer))
        return results

    def uses_xla(self, batch: int) -> tuple[bool, bool]:
        """Whether the epoch and the evaluation functions of a pack at ``batch`` use XLA."""
        if self.jit_compile is not None:
            return self.jit_compile, self.jit_compile
        if self._gpu:
            return True, True
        return batch <= XLA_CPU_MAX_BATCH, False

    def pack_cap(self, batch: int) -> int:
        """The most replicas in one pack at ``batch``: ``max_replicas``, less for XLA on CPU."""
        if self.jit_compile is None and not self._gpu and self.uses_xla(batch)[0]:
            return min(self.max_replicas, XLA_CPU_PACK_CAP)
        return self.max_replicas

    # --------------------------------------------------------------- private

    def _single(self) -> Any:
        if self._fallback is None:
            from workers.training.single import SingleTrainer

            self._fallback = SingleTrainer(
                schedule_options=self.schedule_options, record_steps=self.record_steps
            )
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
                ReplicaResult(key=r.key, status="error", error=f"{type(exc).__name__}: {exc}", traceback=tb)
                for r in replicas
            ]

    def _train_pack(
        self, workload: Any, specs: Sequence[ReplicaSpec], epochs: int, observer: TrainingObserver
    ) -> list[ReplicaResult]:
        t_start = time.perf_counter()
        stats = PackStats(packs=1)
        info = _workload_info(workload)
        n = info.n
        t0 = time.perf_counter()
        reps: list[_Replica] = []
        weights0: list[list[np.ndarray]] = []
        for spec in specs:
            params = {**dict(workload.default_params), **dict(spec.params)}
            resolved = resolve_optimizer_params(params)
            order = BatchOrder(
                n,
                int(params.get("batch_size", 32)),
                spec.data_seed,
                shuffle=bool(params.get("shuffle", True)),
            )
            lr = build_learning_rate(
                params,
                steps_per_epoch=order.steps_per_epoch,
                schedule_options=self.schedule_options,
                epochs=epochs,
            )
            total_steps = max(1, epochs * order.steps_per_epoch)
            if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
                table = np.asarray(keras.ops.convert_to_numpy(lr(np.arange(total_steps))), np.float32)
            else:
                table = np.full(total_steps, float(lr), np.float32)
            plateau = (
                PlateauController.from_options(self.schedule_options)
                if resolved["schedule"] == "reduce_on_plateau"
                else None
            )
            reps.append(
                _Replica(
                    spec,
                    params,
                    resolved,
                    order,
                    table,
                    plateau,
                    float(table[0]),
                    ReplicaResult(key=spec.key, status="completed"),
                )
            )
            weights0.append(_initial_weights(workload, info, spec.init_seed))
        stats.build_s += time.perf_counter() - t0

        batch = reps[0].order.batch_size
        steps = reps[0].order.steps_per_epoch
        k_real = len(reps)
        jit, jit_eval = self.uses_xla(batch)
        # Without XLA the replica axis is dynamic: one compiled function serves every pack size,
        # so packs are never padded. XLA needs static shapes: packs are padded to a bucket (a
        # power of two) so that a few compilations serve every size.
        k = pack_bucket(k_real, max(k_real, self.pack_cap(batch))) if jit else k_real
        pad = k - k_real
        # Dummy replicas copy replica 0 and stay masked out.
        hyper = hyper_from_params([r.resolved for r in reps] + [reps[0].resolved] * pad)
        hyper_t = hyper.as_tensors()
        w = [
            tf.constant(np.stack([ws[j] for ws in weights0] + [weights0[0][j]] * pad))
            for j in range(len(weights0[0]))
        ]
        m, v = init_slots(w)
        iters = tf.constant(0.0)
        dseed = tf.constant(
            int(np.random.SeedSequence([r.spec.init_seed for r in reps]).generate_state(1)[0] & 0x7FFFFFFF),
            tf.int32,
        )

        n_eval_max = max(n, int(info.x_val.shape[0]) if info.x_val is not None else 0)
        key = (
            info.plan.signature,
            workload.loss,
            info.kind,
            batch if jit else 0,  # without XLA the batch size is an input
            # and so is the number of replicas; the evaluation's chunk is sized for the cap
            k if jit else ("any", max(k, self.pack_cap(batch))),
            n,
            n_eval_max,
            tuple(info.x.shape),
            tuple(info.y.shape),
            info.y.dtype.name,
            hyper.kinds,
            jit,
            jit_eval,
        )
        compiled = _COMPILED.get(key)
        cache_hit = compiled is not None
        if compiled is None:
            # One line per new compiled function: a long-lived worker should log it once per
            # (architecture, optimizer kinds; with XLA also batch size and bucket), whatever the
            # number of packs.
            logger.info(
                "compiling pack functions: batch=%d bucket=%s kinds=%s xla=%d (%d cached)",
                batch,
                k if jit else "any",
                ",".join(sorted(hyper.kinds)),
                int(jit),
                len(_COMPILED),
            )
            compiled = _make_compiled(
                info.plan,
                workload.loss,
                info.kind,
                batch,
                k if jit else None,
                max(k, self.pack_cap(batch)),
                n,
                n_eval_max,
                tf.TensorSpec(info.x.shape, tf.float32),
                tf.TensorSpec(info.y.shape, info.y.dtype),
                hyper.kinds,
                jit,
                jit_eval,
            )
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_CACHE:
                _COMPILED.popitem(last=False)
        else:
            _COMPILED.move_to_end(key)
        evaluator = _Evaluator(compiled, info, stats)

        stride = max(1, math.ceil(epochs * steps / MAX_STEP_POINTS))
        active = np.array([True] * k_real + [False] * pad)

        def emit(records: list[tuple[Hashable, EpochRecord]]) -> None:
            t = time.perf_counter()
            if records:
                observer.on_epoch(records)
            stats.observer_s += time.perf_counter() - t

        # Epoch 0: evaluation at initialisation.
        ev = evaluator.run(w)
        recs: list[tuple[Hashable, EpochRecord]] = []
        for i, r in enumerate(reps):
            rec = EpochRecord(
                0, ev.loss[i], ev.acc(i), None, ev.val_loss_at(i), ev.val_acc(i), float(r.lr_table[0]), None
            )
            r.result.epochs.append(rec)
            recs.append((r.spec.key, rec))
            if not math.isfinite(rec.loss):
                r.result.status, r.training, active[i] = "nonfinite", False, False
        emit(recs)

        for epoch in range(1, epochs + 1):
            if not active.any():
                break
            if observer.should_stop():
                for i, r in enumerate(reps):
                    if r.training:
                        r.result.status, r.training, active[i] = "cancelled", False, False
                break
            perms = [np.concatenate(r.order.next_epoch()) for r in reps]
            perm = np.stack(perms + [perms[0]] * pad).astype(np.int32)
            lo = (epoch - 1) * steps
            lr_rows = [
                np.full(steps, r.plateau_lr, np.float32)
                if r.plateau is not None
                else r.lr_table[lo : lo + steps]
                for r in reps
            ]
            lr_tab = np.stack(lr_rows + [lr_rows[0]] * pad, axis=1)
            t = time.perf_counter()
            out = compiled.epoch_fn(
                info.x,
                info.y,
                w,
                m,
                v,
                iters,
                tf.constant(perm),
                tf.constant(lr_tab),
                hyper_t,
                tf.constant(active),
                dseed,
                tf.constant(batch, tf.int32),
            )
            w, m, v, iters = out["w"], out["m"], out["v"], out["iters"]
            host = {name: out[name].numpy() for name in ("bad_loss", "sum_loss", "sum_gn", "count", "active")}
            step_losses = out["step_losses"].numpy() if self.record_steps else None
            dt = time.perf_counter() - t
            if compiled.epoch_compiled:
                stats.step_s += dt
            else:
                compiled.epoch_compiled = True
                stats.compile_s += dt
                stats.compiles += 1
            ev = evaluator.run(w)
            recs = []
            for i, r in enumerate(reps):
                if not r.training:
                    continue
                lr_used = float(lr_tab[steps - 1, i])
                cnt = max(1.0, float(host["count"][i]))
                running = float(host["sum_loss"][i]) / cnt
                gn = float(host["sum_gn"][i]) / cnt
                if step_losses is not None:
                    col = step_losses[:, i]
                    for s in range(steps):
                        g = lo + s
                        if g % stride == 0 or not math.isfinite(float(col[s])):
                            r.result.step_losses.append((g, float(col[s])))
                        if not math.isfinite(float(col[s])):
                            break
                if not host["active"][i]:
                    rec = EpochRecord(
                        epoch, float(host["bad_loss"][i]), None, running, None, None, lr_used, gn
                    )
                else:
                    rec = EpochRecord(
                        epoch, ev.loss[i], ev.acc(i), running, ev.val_loss_at(i), ev.val_acc(i), lr_used, gn
                    )
                r.result.epochs.append(rec)
                recs.append((r.spec.key, rec))
                stats.replica_epochs += 1
                if not math.isfinite(rec.loss):
                    r.result.status, r.training, active[i] = "nonfinite", False, False
                    continue
                if r.plateau is not None:
                    monitor = self.schedule_options["plateau_monitor"]
                    metric = rec.val_loss if monitor == "val_loss" and rec.val_loss is not None else rec.loss
                    r.plateau_lr = r.plateau.update(metric, r.plateau_lr)
            emit(recs)
        stats.total_s = time.perf_counter() - t_start
        stats.host_s = stats.total_s - stats.compile_s - stats.step_s - stats.eval_s - stats.build_s
        self.stats.add(stats)
        # One line per pack: the benchmark reads these from the workers' logs.
        logger.info(
            "pack done: k=%d bucket=%d batch=%d replica_epochs=%d total_s=%.3f step_s=%.3f eval_s=%.3f "
            "compile_s=%.3f build_s=%.3f host_s=%.3f observer_s=%.3f cache_hit=%d xla=%d",
            k_real,
            k,
            batch,
            stats.replica_epochs,
            stats.total_s,
            stats.step_s,
            stats.eval_s,
            stats.compile_s,
            stats.build_s,
            stats.host_s,
            stats.observer_s,
            int(cache_hit),
            int(jit),
        )
        return [r.result for r in reps]


@dataclass
class _EvalResult:
    loss: list[float]
    acc_: list[float] | None
    val_loss: list[float] | None
    val_acc_: list[float] | None

    def acc(self, i: int) -> float | None:
        return None if self.acc_ is None else self.acc_[i]

    def val_loss_at(self, i: int) -> float | None:
        return None if self.val_loss is None else self.val_loss[i]

    def val_acc(self, i: int) -> float | None:
        return None if self.val_acc_ is None else self.val_acc_[i]


class _Evaluator:
    """Full-set loss/accuracy of every replica, in fixed-size padded chunks (one compilation)."""

    def __init__(self, compiled: _Compiled, info: _WorkloadInfo, stats: PackStats) -> None:
        self.compiled = compiled
        self.info = info
        self.stats = stats
        self.train_chunks = self._chunks(info.x, info.y)
        self.val_chunks = self._chunks(info.x_val, info.y_val) if info.x_val is not None else None

    def _chunks(
        self, x: tf.Tensor | None, y: tf.Tensor | None
    ) -> list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, int]]:
        assert x is not None and y is not None
        c = self.compiled.eval_chunk
        n = int(x.shape[0])
        xs, ys = x.numpy(), y.numpy()
        out = []
        for start in range(0, n, c):
            real = min(c, n - start)
            xc, yc = xs[start : start + real], ys[start : start + real]
            if real < c:
                xc = np.concatenate([xc, np.zeros((c - real, *xc.shape[1:]), xc.dtype)])
                yc = np.concatenate([yc, np.zeros((c - real, *yc.shape[1:]), yc.dtype)])
            mask = np.arange(c) < real
            out.append((tf.constant(xc), tf.constant(yc), tf.constant(mask), real))
        return out

    def _run(
        self, chunks: list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, int]], w: list[tf.Tensor]
    ) -> tuple[list[float], list[float] | None]:
        loss = acc = None
        n = 0
        for xc, yc, mc, real in chunks:
            t = time.perf_counter()
            ls, hits = self.compiled.eval_fn(xc, yc, mc, w)
            ls, hits = ls.numpy(), hits.numpy()
            dt = time.perf_counter() - t
            if self.compiled.eval_compiled:
                self.stats.eval_s += dt
            else:
                self.compiled.eval_compiled = True
                self.stats.compile_s += dt
                self.stats.compiles += 1
            loss = ls if loss is None else loss + ls
            acc = hits if acc is None else acc + hits
            n += real
        assert loss is not None and acc is not None
        acc_out = None if self.info.kind == "regression" else [float(a) / n for a in acc]
        return [float(x) / n for x in loss], acc_out

    def run(self, w: list[tf.Tensor]) -> _EvalResult:
        loss, acc = self._run(self.train_chunks, w)
        if self.val_chunks is None:
            return _EvalResult(loss, acc, None, None)
        vl, va = self._run(self.val_chunks, w)
        return _EvalResult(loss, acc, vl, va)
