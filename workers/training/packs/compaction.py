"""When a pack whose replicas ended should go on with its live replicas only.

In a stability sweep many replicas end early (a non-finite loss at a high
learning rate). Masked, they still cost their share of every step and every
evaluation. At an epoch boundary the trainer asks ``plan_compaction`` whether
to shrink the pack to its live replicas (``pack.Pack.compacted``).

Without XLA the replica axis of the compiled functions is dynamic: the
smaller pack runs on the same function, and compacting costs one gather of
the stacked state (``COMPACT_AT`` below says when). Under XLA shapes are
static: the smaller pack needs the function of a smaller bucket, which is
either cached (free) or compiled (seconds), so it compacts when the bucket
shrinks and the time saved over the epochs left exceeds the compilation.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.training.packs.sizing import pack_bucket

# Without XLA: compact once the live replicas are at most this share of the pack.
# Measured on the 2-core CPU, one thread: an epoch's cost grows at least linearly with the
# pack's replicas once packs hold more than a few (least_squares n 4096 d 1024 batch 256,
# `bench_compaction.py --profile`: K 32/24/16/8 cost 1.00/0.44/0.29/0.13 of K 32's 232 ms
# epoch; sensor_lstm batch 32, benchmarks/README.md: 43-49 replica-epochs/s at K 16-64, i.e.
# linear), while compacting costs one gather of the stacked state (0.7 ms for sensor_lstm
# K 64 -> 32, 0.13 ms for least_squares K 32 -> 16) and no compilation. So any shrink pays;
# the threshold only keeps a pack from re-stacking for every single replica that ends (each
# re-stacking may change how the batched kernels round the survivors' last bit, which
# chaotic runs amplify). A sweep where half the replicas end by epoch 3 of 20 ran 1.78x
# faster end to end with it (bench_compaction.py, K 32).
COMPACT_AT = 0.75

# Under XLA, a compilation of unknown cost is assumed to take this long (the CPU XLA epoch
# functions of benchmarks/README.md compiled in 3-10 s).
DEFAULT_COMPILE_S = 5.0


@dataclass(frozen=True)
class CompactionPlan:
    """Go on with ``live`` replicas stacked as ``k`` (``k > live``: padding, under XLA only)."""

    live: int
    k: int


def stacked_size(live: int, k: int, *, jit: bool, cap: int) -> int:
    """How a pack of ``live`` replicas is stacked after compaction: as is, or in an XLA bucket."""
    return pack_bucket(live, max(live, min(cap, k))) if jit else live


def plan_compaction(
    *,
    live: int,
    k: int,
    jit: bool,
    cap: int,
    has_dropout: bool,
    epochs_left: int,
    epoch_s: float,
    cached: bool,
    compile_s: float | None,
) -> CompactionPlan | None:
    """The smaller pack to go on with, or None to keep the pack as it is.

    ``live``: replicas still training; ``k``: the pack's stacked size (padding
    included); ``cap``: the most replicas a pack may hold at its batch size;
    ``epoch_s``: the last epoch's step and evaluation seconds at size ``k``;
    ``cached``: whether the compiled function of the smaller bucket exists (XLA);
    ``compile_s``: what compiling the current function cost, if known.

    A pack with dropout is never compacted: its masks are drawn for the whole
    stacked pack from one key, so removing replicas would change the survivors'
    masks (their results would agree in distribution only, not number for number).
    """
    if live < 1 or live >= k or has_dropout or epochs_left < 1:
        return None
    if not jit:
        return CompactionPlan(live, live) if live <= COMPACT_AT * k else None
    bucket = stacked_size(live, k, jit=True, cap=cap)
    if bucket >= k:
        return None
    if cached:
        return CompactionPlan(live, bucket)
    # Steps and evaluation scale with the stacked size (padding included).
    saved = epochs_left * epoch_s * (1.0 - bucket / k)
    cost = compile_s if compile_s is not None else DEFAULT_COMPILE_S
    return CompactionPlan(live, bucket) if saved > cost else None
