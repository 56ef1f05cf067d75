"""How many replicas go in one pack, and whether a workload can be packed at all."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from workers.training._stacked_model import Unpackable
from workers.training.packs.workload_data import WorkloadDataCache

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


def can_pack(workload: Any, workloads: WorkloadDataCache | None = None) -> tuple[bool, str]:
    """Whether the workload's model can be trained weight-stacked, and why not.

    ``workloads``: the cache to load the workload's data into (a trainer's), if any.
    """
    try:
        (workloads or WorkloadDataCache()).get(workload)
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
    workload: Any,
    n_replicas: int,
    device: str = "cpu",
    cap: int = 64,
    *,
    batch_size: int = 32,
    workloads: WorkloadDataCache | None = None,
) -> int:
    """How many replicas to train in one pack (1 when the workload cannot be packed).

    Heuristic: a replica costs its weights four times over (weights, two
    optimizer slots, gradients) plus the activations of one mini-batch kept
    for the backward pass, counted from the plan (inputs, each layer's
    outputs, the gates of recurrent layers over all timesteps), in float32.
    A pack may use a quarter of the device's memory (shared with other
    workers and the evaluation pass). ``cap`` (the ``pack_max_replicas``
    setting) bounds it; on CPU packs of 16-64 replicas were fastest on the
    small presets and packs of 256 slower (per-op overhead is amortised by 16,
    larger packs only add memory traffic), hence the default cap of 64
    (``PackTrainer.pack_cap`` passes 16 for the batch sizes it runs under XLA
    on CPU).
    """
    workloads = workloads or WorkloadDataCache()
    ok, _ = can_pack(workload, workloads)
    if not ok or n_replicas <= 1:
        return 1
    plan = workloads.get(workload).plan
    per_replica = 4 * (4 * plan.n_params + batch_size * plan.activation_floats_per_sample())
    budget = _device_memory_bytes(device) // 4
    by_memory = max(1, budget // max(1, per_replica))
    return int(max(1, min(cap, n_replicas, by_memory)))


def uses_xla(batch: int, *, jit_compile: bool | None, gpu: bool) -> tuple[bool, bool]:
    """Whether the epoch and the evaluation functions of a pack at ``batch`` use XLA.

    ``jit_compile`` None (default): XLA on GPUs; on CPU for the epoch function of
    batch sizes up to XLA_CPU_MAX_BATCH, never for the CPU evaluation. True / False
    force it everywhere.
    """
    if jit_compile is not None:
        return jit_compile, jit_compile
    if gpu:
        return True, True
    return batch <= XLA_CPU_MAX_BATCH, False


def pack_cap(batch: int, max_replicas: int, *, jit_compile: bool | None, gpu: bool) -> int:
    """The most replicas in one pack at ``batch``: ``max_replicas``, less for XLA on CPU."""
    if jit_compile is None and not gpu and uses_xla(batch, jit_compile=jit_compile, gpu=gpu)[0]:
        return min(max_replicas, XLA_CPU_PACK_CAP)
    return max_replicas
