"""The cache of compiled pack functions: reused across packs and trainers that share it, not beyond."""

from __future__ import annotations

from tests.workers.training.pack_workloads import EPOCHS, OTHERS, TARGET, TinyLSTM, max_rel
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer
from workers.training.packs.caches import PackCaches
from workers.training.packs.compiled import CompiledFunctions
from workers.training.single import SingleTrainer


def test_one_compiled_epoch_serves_every_batch_size_and_pack_size() -> None:
    """Without XLA the batch size and the number of replicas are inputs: no recompilation.

    22 examples at batch 5 is four full batches and a partial one of 2, run through the
    step graph compiled for batch 8 and 3 replicas, in packs of 2 and of 5 (unpadded);
    the replicas still train exactly as alone. The two trainers share one cache, as a
    worker's trainers do.
    """
    lstm = TinyLSTM()
    shared = PackCaches()
    with_batch = [ReplicaSpec(r.key, {**r.params, "batch_size": 5}, r.init_seed, r.data_seed) for r in OTHERS]
    target = ReplicaSpec("target", {**TARGET.params, "batch_size": 5}, TARGET.init_seed, TARGET.data_seed)
    warm = PackTrainer(jit_compile=False, caches=shared)
    warm.train(lstm, [OTHERS[0], TARGET, OTHERS[1]], 1, NullObserver())  # batch 8, compiled here
    trainer = PackTrainer(jit_compile=False, caches=shared)
    pair = trainer.train(lstm, [with_batch[0], target], EPOCHS, NullObserver())
    five = [ReplicaSpec(("x", i), with_batch[1].params, 50 + i, 60 + i) for i in range(3)]
    five_results = trainer.train(lstm, [*five, with_batch[0], target], EPOCHS, NullObserver())
    assert trainer.stats.compiles == 0
    alone = SingleTrainer().train(lstm, [target], EPOCHS, NullObserver())[0]
    assert max_rel(alone, pair[1]) < 1e-4
    assert max_rel(alone, five_results[4]) < 1e-4


def test_trainers_do_not_share_compiled_functions_unless_told() -> None:
    lstm = TinyLSTM()
    first = PackTrainer(jit_compile=False)
    first.train(lstm, [TARGET], 1, NullObserver())
    assert first.stats.compiles == 2 and len(first.caches.compiled) == 1  # epoch and evaluation functions
    second = PackTrainer(jit_compile=False)
    second.train(lstm, [TARGET], 1, NullObserver())
    assert second.stats.compiles == 2 and second.caches is not first.caches
    again = PackTrainer(jit_compile=False, caches=first.caches)
    again.train(lstm, [TARGET], 1, NullObserver())
    assert again.stats.compiles == 0


def test_the_cache_keeps_the_most_recently_used() -> None:
    lstm = TinyLSTM()
    cache = CompiledFunctions(capacity=1)
    trainer = PackTrainer(jit_compile=False, caches=PackCaches(compiled=cache))
    trainer.train(lstm, [TARGET], 1, NullObserver())
    adam_only = len(cache)
    sgd = ReplicaSpec("sgd", {"optimizer": "sgd"}, 1, 2)  # another set of optimizer kinds: a new pair
    trainer.train(lstm, [sgd], 1, NullObserver())
    assert adam_only == len(cache) == 1
    trainer.train(lstm, [TARGET], 1, NullObserver())
    assert trainer.stats.compiles == 6  # the Adam pair was dropped for the SGD pair, then rebuilt
