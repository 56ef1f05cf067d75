"""Compaction: a pack whose replicas ended goes on with its live replicas, with the same results.

Real Keras training on tiny data (``pack_workloads``): two replicas overflow
at their first step, the pack shrinks after epoch 1, and the survivors'
records must equal those of the same pack trained without compaction (and
the lone runs, as the other pack tests check).
"""

from __future__ import annotations

import logging
import math

import pytest

from tests.workers.training.pack_workloads import BAD, EPOCHS, OTHERS, TARGET, TinyDense, TinyLSTM, max_rel
from workers.training.interface import NullObserver, ReplicaResult, ReplicaSpec
from workers.training.packs import PackTrainer
from workers.training.packs.compaction import COMPACT_AT, plan_compaction
from workers.training.packs.sizing import XLA_CPU_MAX_BATCH
from workers.training.single import SingleTrainer

BAD2 = ReplicaSpec("bad2", {"optimizer": "sgd", "learning_rate": 1e38}, 51, 52)
SPECS = [BAD, TARGET, BAD2, OTHERS[0]]


def _assert_same(a: ReplicaResult, b: ReplicaResult) -> None:
    """Equal record for record, to float32 rounding of the stacked arithmetic.

    Measured: the LSTM pack's survivors agree exactly or in the last bit (~5e-9
    relative: the batched products of 2 and of 4 replicas round differently).
    """
    assert a.status == b.status and len(a.epochs) == len(b.epochs)
    assert [math.isfinite(e.loss) for e in a.epochs] == [math.isfinite(e.loss) for e in b.epochs]
    assert max_rel(a, b) < 1e-6


def test_survivors_train_the_same_after_compaction(caplog: pytest.LogCaptureFixture) -> None:
    wl = TinyLSTM()
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        compacted = PackTrainer().train(wl, SPECS, EPOCHS, NullObserver())
    kept = PackTrainer(compaction=False).train(wl, SPECS, EPOCHS, NullObserver())
    assert "pack compacted after epoch 1: 4 -> 2 replicas" in caplog.text
    assert "sizes=4>2" in caplog.text
    assert [r.key for r in compacted] == ["bad", "target", "bad2", "sgd"]
    assert [r.status for r in compacted] == ["nonfinite", "completed", "nonfinite", "completed"]
    for a, b in zip(compacted, kept, strict=True):
        _assert_same(a, b)
    # And the lone run, as every pack test checks.
    single = SingleTrainer().train(wl, [TARGET], EPOCHS, NullObserver())[0]
    assert max_rel(single, compacted[1]) < 1e-4
    # Each run says how it was trained: the survivors went through the compaction.
    survivor, ended = compacted[1].training, compacted[0].training
    assert survivor is not None and ended is not None
    assert survivor.mode == "pack" and survivor.pack_size == 4
    assert [(r.epoch, r.size) for r in survivor.resized] == [(1, 2)]
    assert ended.resized == [] and ended.pack_size == 4
    assert kept[1].training is not None and kept[1].training.resized == []


def test_xla_pack_compacts_into_a_cached_smaller_bucket(caplog: pytest.LogCaptureFixture) -> None:
    """Under XLA (batch <= XLA_CPU_MAX_BATCH on CPU) the smaller bucket's function is reused."""
    wl = TinyDense()
    specs = [
        ReplicaSpec(s.key, {**s.params, "batch_size": XLA_CPU_MAX_BATCH}, s.init_seed, s.data_seed)
        for s in SPECS
    ]
    trainer = PackTrainer()
    warm = trainer.train(wl, [specs[1], specs[3]], 1, NullObserver())  # compiles bucket 2
    assert warm[0].training is not None and warm[0].training.xla
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        compacted = trainer.train(wl, specs, 3, NullObserver())
    assert "4 -> 2 replicas (stacked 4 -> 2, compiled function reused)" in caplog.text
    kept = PackTrainer(compaction=False).train(wl, specs, 3, NullObserver())
    for a, b in zip(compacted, kept, strict=True):
        _assert_same(a, b)
    assert compacted[1].training is not None
    assert [(r.size, r.compiled) for r in compacted[1].training.resized] == [(2, False)]


def test_dropout_packs_are_not_compacted(caplog: pytest.LogCaptureFixture) -> None:
    wl = TinyDense(dropout=0.3)
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        results = PackTrainer().train(wl, SPECS, 2, NullObserver())
    assert "compacted" not in caplog.text
    assert results[1].training is not None and results[1].training.resized == []


def _plan(
    *,
    live: int = 2,
    k: int = 4,
    jit: bool = False,
    cap: int = 64,
    has_dropout: bool = False,
    epochs_left: int = 5,
    epoch_s: float = 1.0,
    cached: bool = False,
    compile_s: float | None = None,
) -> int | None:
    """The stacked size the rule compacts to, or None."""
    plan = plan_compaction(
        live=live,
        k=k,
        jit=jit,
        cap=cap,
        has_dropout=has_dropout,
        epochs_left=epochs_left,
        epoch_s=epoch_s,
        cached=cached,
        compile_s=compile_s,
    )
    return None if plan is None else plan.k


def test_the_rule() -> None:
    # Without XLA: compact once live <= COMPACT_AT of the pack, to exactly the live replicas.
    at = int(COMPACT_AT * 16)
    assert _plan(live=at, k=16) == at
    assert _plan(live=at + 1, k=16) is None
    assert _plan(has_dropout=True) is None
    assert _plan(epochs_left=0) is None
    assert _plan(live=0) is None
    # Under XLA: only when the bucket shrinks, and a compilation must be paid back.
    assert _plan(jit=True, live=3, k=4) is None  # bucket 4 again
    assert _plan(jit=True, live=2, k=4, cached=True) == 2
    assert _plan(jit=True, live=2, k=4, epochs_left=5, compile_s=3.0) is None  # saves 2.5 s of 3
    assert _plan(jit=True, live=2, k=4, epochs_left=10, compile_s=3.0) == 2  # saves 5 s
    assert _plan(jit=True, live=5, k=16, cap=16, epochs_left=100, compile_s=1.0) == 8
