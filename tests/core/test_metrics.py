"""The queue snapshot behind /metrics, read from the database (the HTTP side is in
tests/reliability/test_operations.py)."""

from __future__ import annotations

from service.core import metrics
from service.core.db import Database
from service.core.repo import workers as workers_repo
from service.core.states import WorkerState


def test_only_live_workers_are_reported_in_id_order(db: Database) -> None:
    with db.transaction() as s:
        for wid in ("w-b", "w-a", "w-stopped"):
            workers_repo.register(s, worker_id=wid, hostname="h", pid=1, device="cpu")
        workers_repo.set_state(s, worker_id="w-stopped", state=WorkerState.STOPPED)
        workers_repo.set_state(s, worker_id="w-b", state=WorkerState.TRAINING)
    with db.transaction() as s:
        snap = metrics.snapshot(s, grace_s=60)
    assert [(w.worker_id, w.state) for w in snap.workers] == [("w-a", "idle"), ("w-b", "training")]
    assert all(0 <= w.age_s < 60 for w in snap.workers)
    assert snap.queue_depth == 0 and snap.durations.count == 0
    with db.transaction() as s:
        assert metrics.snapshot(s, grace_s=-1).workers == ()  # heartbeats older than the grace
