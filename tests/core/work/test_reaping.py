"""Reaping: stale trials are failed and retried, a late result is dropped, retries are bounded."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState
from sqlalchemy import select

from service.core.config import Settings
from service.core.db import Database
from service.core.repo import workers as workers_repo
from service.core.repo.models import Config, Run, Sweep
from service.core.work.claims import claim
from service.core.work.finishing import maybe_finish_sweep
from service.core.work.reaping import reap_stale
from tests.helpers import finish_claim, new_sweep


def test_stale_trial_is_failed_and_retried_and_the_late_result_is_dropped(
    db: Database, settings: Settings
) -> None:
    sweep_id = new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    with db.transaction() as s:
        workers_repo.register(s, worker_id="old", hostname="h", pid=0, device="cpu")
    (first,) = claim(db, "old")
    time.sleep(0.3)
    assert reap_stale(db, grace_s=0.1, max_retries=3) == 1
    (retry,) = claim(db, "new")
    assert retry.config_id == first.config_id and retry.trial_id != first.trial_id

    assert not finish_claim(db, first, worker_id="old", final_loss=0.1)  # the late result is dropped
    assert finish_claim(db, retry, worker_id="new", final_loss=0.2, intermediate=[(0, 1.0), (1, 0.2)])
    assert maybe_finish_sweep(db, sweep_id) == "completed"
    with db.transaction() as s:
        runs = s.execute(select(Run.trial_id, Run.final_loss)).all()
        cfg = s.scalars(select(Config)).one()
    assert len(runs) == 2 and {r.trial_id for r in runs} == {retry.trial_id}
    assert all(r.final_loss == 0.2 for r in runs)
    assert cfg.attempts == 1 and cfg.state == "completed"
    with db.transaction() as s:
        study_name = s.get(Sweep, sweep_id).study_name  # type: ignore[union-attr]
    study = optuna.load_study(study_name=study_name, storage=settings.database_url)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE][0]
    assert complete.value == 0.2 and complete.intermediate_values == {0: 1.0, 1: 0.2}
    assert complete.params == first.params | {} or complete.params["learning_rate"] == 1e-3


def test_retries_are_bounded(db: Database, settings: Settings) -> None:
    new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    for _ in range(3):
        assert claim(db, "w")
        time.sleep(0.15)
        reap_stale(db, grace_s=0.1, max_retries=2)
    assert claim(db, "w") == []
    with db.transaction() as s:
        cfg = s.scalars(select(Config)).one()
    assert cfg.state == "failed" and "gave up after 2 retries" in (cfg.error or "")


def test_a_fresh_heartbeat_is_not_reaped(db: Database, settings: Settings) -> None:
    new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    assert claim(db, "w")
    assert reap_stale(db, grace_s=60, max_retries=2) == 0
    with db.transaction() as s:
        assert s.scalars(select(Config.state)).one() == "running"
