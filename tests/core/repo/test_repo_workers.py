"""service/core/repo/workers.py: the worker registry on a real database."""

from __future__ import annotations

from service.core.db import Database
from service.core.repo import workers as workers_repo
from service.core.states import WorkerState
from service.core.timeutil import utcnow


def test_register_then_lifecycle_of_one_worker(db: Database) -> None:
    with db.transaction() as s:
        workers_repo.register(s, worker_id="w", hostname="h", pid=7, device="cpu")
        workers_repo.mark_training(s, worker_id="w", trial_id=3, sweep_id=2, now=utcnow())
    with db.transaction() as s:
        (w,) = workers_repo.list_workers(s, grace_s=60)
    assert (w.id, w.hostname, w.pid, w.device) == ("w", "h", 7, "cpu")
    assert w.alive and w.state == WorkerState.TRAINING
    assert (w.current_trial_id, w.current_sweep_id) == (3, 2)
    with db.transaction() as s:
        workers_repo.count_trial_done(s, worker_id="w")
        workers_repo.count_trial_done(s, worker_id="w")
        workers_repo.set_state(
            s, worker_id="w", state=WorkerState.IDLE, add_train_seconds=1.5, add_busy_seconds=2
        )
        workers_repo.set_state(s, worker_id="w", state=WorkerState.IDLE, add_train_seconds=1.0)
    with db.transaction() as s:
        (w,) = workers_repo.list_workers(s, grace_s=60)
    assert w.trials_done == 2 and w.train_seconds == 2.5 and w.busy_seconds == 2.0
    assert w.state == WorkerState.IDLE and w.current_trial_id is None and w.current_sweep_id is None
    with db.transaction() as s:  # the same id registering again starts a fresh row
        workers_repo.register(s, worker_id="w", hostname="h2", pid=8, device="gpu")
    with db.transaction() as s:
        (w,) = workers_repo.list_workers(s, grace_s=60)
    assert (w.hostname, w.pid, w.trials_done, w.train_seconds) == ("h2", 8, 0, 0.0)


def test_stopped_and_silent_workers_are_listed_only_on_request(db: Database) -> None:
    with db.transaction() as s:
        for wid in ("a", "b"):
            workers_repo.register(s, worker_id=wid, hostname="h", pid=1, device="cpu")
        workers_repo.set_state(s, worker_id="b", state=WorkerState.STOPPED)
    with db.transaction() as s:
        assert [w.id for w in workers_repo.list_workers(s, grace_s=60)] == ["a"]
        both = workers_repo.list_workers(s, grace_s=60, include_stopped=True)
        assert [(w.id, w.state, w.alive) for w in both] == [("a", "idle", True), ("b", "stopped", False)]
        # A heartbeat older than the grace reads as stopped, whatever the row says.
        silent = workers_repo.list_workers(s, grace_s=-1, include_stopped=True)
        assert [(w.state, w.alive) for w in silent] == [("stopped", False)] * 2
        assert workers_repo.list_workers(s, grace_s=-1) == []


def test_touch_moves_the_heartbeat(db: Database) -> None:
    with db.transaction() as s:
        workers_repo.register(s, worker_id="w", hostname="h", pid=1, device="cpu")
    with db.transaction() as s:
        before = workers_repo.list_workers(s, grace_s=60)[0].heartbeat_at
    later = utcnow()
    with db.transaction() as s:
        workers_repo.touch(s, worker_id="w", now=later)
    with db.transaction() as s:
        after = workers_repo.list_workers(s, grace_s=60)[0].heartbeat_at
    assert after >= before and abs((after - later).total_seconds()) < 1e-3
