"""The worker loop's decisions, against an in-memory store, a virtual clock and a fake trainer.

No database, no TensorFlow, no process: each test takes milliseconds. The
same behaviour with real processes is covered by tests/test_worker_lifecycle.py
and tests/reliability/test_worker_faults.py.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from service.core.config import Settings
from service.core.errors import DatabaseUnavailable
from service.core.records import PackResize, RunTraining
from service.core.states import ConfigState, RunStatus, SweepState, WorkerState
from tests.workers.fake_clock import FakeClock
from tests.workers.fake_store import FakeStore
from tests.workers.fake_training import FakeResolver, FakeTrainer
from workers.loop import FLUSH_INTERVAL_S, WorkerLoop
from workers.store import Claim
from workers.training.interface import Trainer
from workers.workloads.base import Workload

HEARTBEAT_S = 1.0


def make_loop(
    store: FakeStore,
    clock: FakeClock,
    trainer: FakeTrainer | Callable[[Workload, Claim], Trainer],
    *,
    resolver: FakeResolver | None = None,
    **settings: Any,
) -> WorkerLoop:
    factory = (lambda w, c: trainer) if isinstance(trainer, FakeTrainer) else trainer
    return WorkerLoop(
        settings=Settings(
            **{
                "database_url": "sqlite://",
                "heartbeat_interval_s": HEARTBEAT_S,
                "heartbeat_grace_s": 10.0,
                "poll_interval_s": 1.0,
                "pack_max_replicas": 4,
                **settings,
            }
        ),
        store=store,
        clock=clock,
        resolver=resolver or FakeResolver(),
        trainer_factory=factory,
        worker_id="w1",
    )


def wait_real(predicate: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """For the one thing that runs on its own thread (the heartbeat): wait for it in real time."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_claims_trains_and_finishes_a_configuration(store: FakeStore, clock: FakeClock) -> None:
    sweep = store.add_sweep([{"learning_rate": 0.1}], n_seeds=2, epochs=3)
    (config_id,) = store.configs
    trainer = FakeTrainer(clock)
    loop = make_loop(store, clock, trainer)

    loop.run(max_configs=1)

    (pack,) = trainer.packs
    assert [(r.params, r.init_seed, r.data_seed) for r in pack] == [
        ({"learning_rate": 0.1}, 100, 200),
        ({"learning_rate": 0.1}, 101, 201),
    ]
    cfg = store.configs[config_id]
    assert cfg.state == ConfigState.COMPLETED and cfg.worker_id == "w1"
    assert cfg.value == pytest.approx(0.25)  # median over seeds of the final loss 1/(3+1)
    runs = store.runs_of(config_id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 2
    assert all(r.outcome is not None and r.outcome.epochs_run == 3 for r in runs)
    assert len(store.points) == 2 * 4  # epochs 0..3 of both seeds, written by the final flush
    assert store.finished == [config_id] and loop.stats.trials_done == 1
    # Nothing left: the sweep is finished and its report stored.
    assert store.sweeps[sweep].state == SweepState.COMPLETED and store.reports == [sweep]
    assert store.workers["w1"].state == WorkerState.STOPPED


def test_each_run_stores_and_logs_how_it_was_trained(
    store: FakeStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store.add_sweep([{"learning_rate": lr} for lr in (0.1, 0.2)], n_seeds=2, epochs=1)
    how = RunTraining(mode="pack", pack_size=4, resized=[PackResize(1, 2)], compiled_function="reused")
    trainer = FakeTrainer(clock, training=how)

    with caplog.at_level(logging.INFO, logger="workers.loop"):
        make_loop(store, clock, trainer, pack_max_replicas=4).run(max_configs=2)

    outcomes = [r.outcome for c in store.configs for r in store.runs_of(c)]
    assert len(outcomes) == 4 and all(o is not None and o.training == how for o in outcomes)
    run_ids = sorted(r.id for c in store.configs for r in store.runs_of(c))
    how_text = "in a pack of 4, 2 after epoch 1; compiled function reused"
    assert f"runs {run_ids[0]}-{run_ids[-1]} trained {how_text}" in caplog.text


def test_packs_configurations_of_a_sweep_up_to_the_replica_cap(store: FakeStore, clock: FakeClock) -> None:
    store.add_sweep([{"learning_rate": lr} for lr in (0.1, 0.2, 0.3)], n_seeds=2, epochs=1)
    trainer = FakeTrainer(clock)

    make_loop(store, clock, trainer, pack_max_replicas=4).run(max_configs=3)

    assert [len(p) for p in trainer.packs] == [4, 2]  # two configurations x two seeds, then one
    assert all(c.state == ConfigState.COMPLETED for c in store.configs.values())


def test_heartbeats_while_training_once_per_interval(store: FakeStore, clock: FakeClock) -> None:
    store.add_sweep([{"learning_rate": 0.1}], epochs=2)
    (config_id,) = store.configs
    beats: list[float] = []
    claimed: list[float] = []

    def note_time(name: str) -> None:
        {"heartbeat": beats, "claim": claimed}.get(name, []).append(clock.monotonic())

    store.on_call = note_time

    def two_beats_mid_training(epoch: int) -> None:
        if epoch != 1:
            return
        for n in (1, 2):
            # Time moves in small steps until the heartbeat thread has beaten n times.
            def beaten(n: int = n) -> bool:
                clock.advance(0.1)
                return len(beats) >= n

            wait_real(beaten, f"heartbeat {n}")
        assert store.configs[config_id].state == ConfigState.RUNNING  # still training

    trainer = FakeTrainer(clock, epoch_s=0.0, after_epoch=two_beats_mid_training)
    make_loop(store, clock, trainer).run(max_configs=1)

    assert len(beats) >= 2 and store.workers["w1"].heartbeats == len(beats)
    assert beats[0] - claimed[0] >= HEARTBEAT_S
    assert all(b - a >= HEARTBEAT_S for a, b in itertools.pairwise(beats))
    assert store.configs[config_id].state == ConfigState.COMPLETED


def test_flushes_curve_points_at_most_once_per_flush_interval(store: FakeStore, clock: FakeClock) -> None:
    store.add_sweep([{"learning_rate": 0.1}], epochs=8)
    # Four epochs per flush interval: epochs 0-4 go out together at 1 s, 5-8 at 2 s.
    trainer = FakeTrainer(clock, epoch_s=FLUSH_INTERVAL_S / 4)

    make_loop(store, clock, trainer).run(max_configs=1)

    assert store.flushes == [5, 4]
    assert sorted(p.record.epoch for p in store.points) == list(range(9))


def test_stop_releases_the_configurations_it_had_not_finished(store: FakeStore, clock: FakeClock) -> None:
    sweep = store.add_sweep([{"learning_rate": 0.1}, {"learning_rate": 0.2}], n_seeds=2, epochs=10)
    trials = {c.id: c.trial_id for c in store.configs.values()}
    # SIGTERM's handler sets ``stopping`` (workers/main.py); here it comes after epoch 2.
    trainer = FakeTrainer(clock, after_epoch=lambda e: loop.stopping.set() if e == 2 else None)
    loop = make_loop(store, clock, trainer)

    loop.run()

    assert sorted(store.released) == sorted(trials) and store.finished == []
    for cfg in store.configs.values():
        # Waiting again under a fresh trial, with no runs or curve points of the dropped attempt.
        assert cfg.state == ConfigState.WAITING and cfg.worker_id is None
        assert cfg.trial_id != trials[cfg.id]
    assert store.runs == {} and store.points == []
    assert store.sweeps[sweep].state == SweepState.RUNNING
    assert store.workers["w1"].state == WorkerState.STOPPED


def test_a_failing_trainer_records_the_error_and_the_loop_goes_on(store: FakeStore, clock: FakeClock) -> None:
    store.add_sweep([{"learning_rate": 0.1}, {"learning_rate": 0.2}], n_seeds=2, epochs=2)
    bad, good = store.configs
    broken = FakeTrainer(clock, error=ValueError("boom"))
    working = FakeTrainer(clock)

    def trainer_for(workload: Workload, claim: Claim) -> Trainer:
        return broken if claim.config_id == bad else working

    loop = make_loop(store, clock, trainer_for, pack_max_replicas=2)  # one configuration per pack
    loop.run(max_configs=2)

    failed = store.configs[bad]
    assert failed.state == ConfigState.FAILED and failed.error == "ValueError: boom"
    for run in store.runs_of(bad):
        assert run.status == RunStatus.ERROR and run.outcome is not None
        assert run.outcome.error == "ValueError: boom"
        assert run.outcome.traceback is not None and "Traceback" in run.outcome.traceback
        assert "ValueError: boom" in run.outcome.traceback
    assert store.configs[good].state == ConfigState.COMPLETED
    assert store.finished == [bad, good] and loop.stats.trials_done == 2


def test_a_workload_that_cannot_be_built_fails_its_runs(store: FakeStore, clock: FakeClock) -> None:
    sweep = store.add_sweep([{"learning_rate": 0.1}], epochs=2, spec={"workload": {"id": 7}})
    (config_id,) = store.configs
    resolver = FakeResolver(error=LookupError("workload 7 was deleted"))
    trainer = FakeTrainer(clock)

    make_loop(store, clock, trainer, resolver=resolver).run(max_configs=1)

    assert resolver.blocks == [{"id": 7}] and trainer.packs == []
    assert store.configs[config_id].state == ConfigState.FAILED
    assert store.configs[config_id].error == "LookupError: workload 7 was deleted"
    assert store.sweeps[sweep].state == SweepState.FAILED and store.reports == []


def test_a_cancelled_sweep_stops_its_pack(store: FakeStore, clock: FakeClock) -> None:
    sweep = store.add_sweep([{"learning_rate": 0.1}], n_seeds=2, epochs=20)
    (config_id,) = store.configs
    trainer = FakeTrainer(
        clock, epoch_s=FLUSH_INTERVAL_S / 4, after_epoch=lambda e: store.cancel(sweep) if e == 1 else None
    )
    loop = make_loop(store, clock, trainer)

    loop.run(max_configs=1, max_idle_s=5)

    # The flush at 1 s (after epoch 4) reports the cancellation; epoch 5 never starts.
    runs = store.runs_of(config_id)
    assert [r.status for r in runs] == [RunStatus.CANCELLED] * 2
    assert all(r.outcome is not None and r.outcome.epochs_run == 4 for r in runs)
    assert store.configs[config_id].state == ConfigState.CANCELLED
    assert store.released == [] and store.reports == []
    assert not loop.stopping.is_set()  # the worker itself goes on (here: idles, then exits)


def test_a_configuration_lost_to_a_reaper_stops_and_its_late_results_are_dropped(
    store: FakeStore, clock: FakeClock
) -> None:
    store.add_sweep([{"learning_rate": 0.1}], epochs=20)
    (config_id,) = store.configs
    first_trial = store.configs[config_id].trial_id
    reaped: list[int] = []

    def reap_once(epoch: int) -> None:
        if epoch == 1 and not reaped:
            store.reap(config_id)  # another worker thought this one dead
            reaped.append(store.configs[config_id].trial_id)

    trainer = FakeTrainer(clock, epoch_s=FLUSH_INTERVAL_S / 4, after_epoch=reap_once)
    loop = make_loop(store, clock, trainer)

    loop.run(max_configs=1)

    # The first attempt stopped when its first flush (after epoch 4, at 1 s) found the
    # configuration gone, and was never finished; the loop then claimed the re-enqueued
    # configuration under its new trial and trained it through.
    first, second = trainer.results
    assert [(r.status, len(r.epochs)) for r in first] == [("cancelled", 5)]
    assert [(r.status, len(r.epochs)) for r in second] == [("completed", 21)]
    assert store.finished == [config_id] and store.dropped == []
    cfg = store.configs[config_id]
    assert cfg.state == ConfigState.COMPLETED and cfg.trial_id == reaped[0] != first_trial
    (run,) = store.runs_of(config_id)
    assert {p.run_id for p in store.points} == {run.id}
    assert len(store.points) == 21  # only the second attempt's epochs 0..20


def test_a_result_that_arrives_after_the_configuration_was_lost_is_dropped(
    store: FakeStore, clock: FakeClock
) -> None:
    store.add_sweep([{"learning_rate": 0.1}], epochs=2)
    (config_id,) = store.configs

    def reap_before_first_finish(name: str) -> None:
        if name == "finish_config" and not store.dropped:
            store.reap(config_id)

    store.on_call = reap_before_first_finish
    loop = make_loop(store, clock, FakeTrainer(clock))

    loop.run(max_idle_s=0)

    assert store.dropped == [config_id]  # the late result of the first attempt
    assert store.finished == [config_id]  # the retry's
    assert loop.stats.trials_done == 1
    assert store.configs[config_id].state == ConfigState.COMPLETED


def test_idle_worker_reaps_each_heartbeat_interval_and_exits_after_the_idle_timeout(
    store: FakeStore, clock: FakeClock
) -> None:
    claims: list[float] = []
    store.on_call = lambda name: claims.append(clock.monotonic()) if name == "claim" else None
    start = clock.monotonic()
    loop = make_loop(store, clock, FakeTrainer(clock), heartbeat_interval_s=5.0, poll_interval_s=1.0)

    loop.run(max_idle_s=30)

    assert clock.monotonic() - start == 31  # idle for more than 30 s, polling each second
    assert [t - start for t in claims] == list(range(32))
    assert store.reap_calls == 7  # at 0, 5, ..., 30 s
    assert store.workers["w1"].state == WorkerState.STOPPED


def test_database_outage_backs_off_and_the_loop_goes_on(store: FakeStore, clock: FakeClock) -> None:
    store.add_sweep([{"learning_rate": 0.1}], epochs=1)
    outages = [DatabaseUnavailable("connection refused")]

    def fail_first_claim(name: str) -> None:
        if name == "claim" and outages:
            raise outages.pop()

    store.on_call = fail_first_claim
    start = clock.monotonic()

    make_loop(store, clock, FakeTrainer(clock, epoch_s=0.0)).run(max_configs=1)

    # Backed off min(5, 3 x poll interval) once, then waited the usual poll before claiming again.
    assert clock.monotonic() - start == 3.0 + 1.0
    assert list(c.state for c in store.configs.values()) == [ConfigState.COMPLETED]


def test_needs_a_database_or_a_store_and_a_resolver() -> None:
    with pytest.raises(TypeError):
        WorkerLoop(settings=Settings(database_url="sqlite://"), store=FakeStore())
