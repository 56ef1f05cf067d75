"""service/core/repo/queue_counts.py: the counts /metrics reports, grouped by the database."""

from __future__ import annotations

from service.core.config import Settings
from service.core.db import Database
from service.core.repo.queue_counts import queue_counts
from service.core.work.claims import claim
from tests.helpers import finish_claim, new_sweep


def test_empty_database_counts_nothing(db: Database) -> None:
    with db.transaction() as s:
        counts = queue_counts(s)
    assert (counts.configs, counts.sweeps, counts.runs, counts.config_seconds) == ({}, {}, {}, ())


def test_counts_by_state_class_and_finished_durations(db: Database, settings: Settings) -> None:
    new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4]}, seeds=2)
    new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]}, seeds=1)
    first, second = claim(db, "w", max_replicas=4)
    assert finish_claim(db, first, worker_id="w", final_loss=0.1)
    with db.transaction() as s:
        counts = queue_counts(s)
    assert counts.sweeps == {"running": 1, "queued": 1}
    assert counts.configs == {
        ("running", "completed"): 1,
        ("running", "running"): 1,
        ("running", "waiting"): 1,
        ("queued", "waiting"): 1,
    }
    assert counts.runs == {("completed", "converged"): 2, ("running", ""): 2}  # no class yet: ""
    assert len(counts.config_seconds) == 1 and counts.config_seconds[0] >= 0.0
    assert second.sweep_id == first.sweep_id
