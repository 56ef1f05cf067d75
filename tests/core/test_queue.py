"""The queue's invariants without training: racing claims, reaping, late results."""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState
from sqlalchemy import func, select

from service.core import queue
from service.core.config import Settings
from service.core.db import Database
from service.core.repo import workers as workers_repo
from service.core.repo.models import Config, Run
from service.core.sweeps import create_sweep, parse_spec
from tests.conftest import small_spec
from tests.helpers import finish_claim


def _sweep(db: Database, settings: Settings, **kw: object) -> int:
    record, _ = create_sweep(db, settings, parse_spec(small_spec(**kw)))
    return record.id


def test_racing_workers_never_claim_the_same_trial(db: Database, settings: Settings) -> None:
    _sweep(
        db, settings, space={"learning_rate": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "batch_size": [1, 2, 3, 4, 5, 6]}
    )
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        with db.transaction() as s:
            workers_repo.register(s, worker_id=name, hostname="h", pid=0, device="cpu")
        while True:
            got = queue.claim(db, name, max_replicas=2)
            if not got:
                return
            with lock:
                claimed.extend((name, c.trial_id) for c in got)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trial_ids = [t for _, t in claimed]
    assert len(trial_ids) == 30 and len(set(trial_ids)) == 30
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 60
        assert s.scalar(select(func.count()).where(Config.state == "running")) == 30


def test_stale_trial_is_failed_and_retried_and_the_late_result_is_dropped(
    db: Database, settings: Settings
) -> None:
    sweep_id = _sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    with db.transaction() as s:
        workers_repo.register(s, worker_id="old", hostname="h", pid=0, device="cpu")
    (first,) = queue.claim(db, "old")
    time.sleep(0.3)
    assert queue.reap_stale(db, grace_s=0.1, max_retries=3) == 1
    (retry,) = queue.claim(db, "new")
    assert retry.config_id == first.config_id and retry.trial_id != first.trial_id

    assert not finish_claim(db, first, worker_id="old", final_loss=0.1)  # the late result is dropped
    assert finish_claim(db, retry, worker_id="new", final_loss=0.2, intermediate=[(0, 1.0), (1, 0.2)])
    assert queue.maybe_finish_sweep(db, sweep_id) == "completed"
    with db.transaction() as s:
        runs = s.execute(select(Run.trial_id, Run.final_loss)).all()
        cfg = s.scalars(select(Config)).one()
    assert len(runs) == 2 and {r.trial_id for r in runs} == {retry.trial_id}
    assert all(r.final_loss == 0.2 for r in runs)
    assert cfg.attempts == 1 and cfg.state == "completed"
    with db.transaction() as s:
        from service.core.repo.models import Sweep

        study_name = s.get(Sweep, sweep_id).study_name  # type: ignore[union-attr]
    study = optuna.load_study(study_name=study_name, storage=settings.database_url)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE][0]
    assert complete.value == 0.2 and complete.intermediate_values == {0: 1.0, 1: 0.2}
    assert complete.params == first.params | {} or complete.params["learning_rate"] == 1e-3


def test_retries_are_bounded(db: Database, settings: Settings) -> None:
    _sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    for _ in range(3):
        assert queue.claim(db, "w")
        time.sleep(0.15)
        queue.reap_stale(db, grace_s=0.1, max_retries=2)
    assert queue.claim(db, "w") == []
    with db.transaction() as s:
        cfg = s.scalars(select(Config)).one()
    assert cfg.state == "failed" and "gave up after 2 retries" in (cfg.error or "")


def test_claims_split_a_sweep_evenly_over_live_workers(db: Database, settings: Settings) -> None:
    """10 configurations x 8 seeds, two live workers: packs shrink as the sweep drains.

    Each claim takes the fair share of what is still waiting (half of it here), rounded
    down to a full pack bucket: 32 of 80, 16 of 48, 16 of 32, 8 of 16, the last 8
    (guided self-scheduling). Neither worker takes most of the sweep while the other idles
    (rounding up gave 64 and 16), and the last packs are the smallest, so the workers'
    finishing times even out.
    """
    _sweep(
        db,
        settings,
        seeds=8,
        space={
            "optimizer": ["adam"],
            "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
            "batch_size": [4],
            "beta_1": [0.5, 0.9],
        },
    )
    sizes = []
    for worker in ("a", "b", "b", "b", "a"):
        sizes.append(len(queue.claim(db, worker, max_replicas=64, live_workers=2)) * 8)
    assert sizes == [32, 16, 16, 8, 8]
    assert queue.claim(db, "a", max_replicas=64, live_workers=2) == []
    # max_replicas still bounds a pack: one configuration at a time when it is a single seed set.
    _sweep(db, settings, seeds=8, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]})
    assert len(queue.claim(db, "a", max_replicas=8, live_workers=1)) == 1
