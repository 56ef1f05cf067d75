"""workers/store.py: DatabaseStore, the loop's one adapter onto the service, each operation once on a
real database (the loop's decisions are tested against tests/workers/fake_store.py)."""

from __future__ import annotations

import time

from service.core.config import Settings
from service.core.db import Database
from service.core.records import CurvePoint, RunOutcome
from service.core.repo import runs as runs_repo
from service.core.repo import workers as workers_repo
from service.core.results.reports import stored_report
from service.core.states import ConfigState, RunStatus, SweepState, WorkerState
from tests.helpers import new_sweep
from workers.store import ConfigResult, DatabaseStore, RunEpoch
from workers.training.interface import EpochRecord


def _converged(run_id: int) -> RunOutcome:
    return RunOutcome(run_id, RunStatus.COMPLETED, "converged", [], {}, 1, 0.1, 1.0)


def test_the_worker_row_operations(db: Database) -> None:
    store = DatabaseStore(db)
    store.register(worker_id="w", hostname="h", pid=3, device="cpu")
    store.register(worker_id="v", hostname="h", pid=4, device="cpu")
    assert store.live_workers(grace_s=60) == 2
    store.set_state(worker_id="v", state=WorkerState.STOPPED, add_train_seconds=2.0, add_busy_seconds=3.0)
    assert store.live_workers(grace_s=60) == 1
    with db.transaction() as s:
        rows = {w.id: w for w in workers_repo.list_workers(s, grace_s=60, include_stopped=True)}
    assert rows["v"].state == WorkerState.STOPPED and (rows["v"].train_seconds, rows["v"].busy_seconds) == (
        2.0,
        3.0,
    )
    assert rows["w"].state == WorkerState.IDLE and rows["w"].pid == 3


def test_claim_heartbeat_record_finish_and_close_the_sweep(db: Database, settings: Settings) -> None:
    store = DatabaseStore(db)
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]}, seeds=1)
    store.register(worker_id="w", hostname="h", pid=1, device="cpu")
    assert store.maybe_finish_sweep(sweep_id=sid) is None  # work is waiting
    (c,) = store.claim(worker_id="w", max_replicas=4, live_workers=1)
    assert store.claim(worker_id="w", max_replicas=4, live_workers=1) == []
    owned = {c.config_id: c.trial_id}
    assert store.heartbeat(worker_id="w", owned=owned).owned == {c.config_id}
    run = c.runs[0].run_id
    record = EpochRecord(0, 2.0, 0.5, None, None, None, 1e-3, None)
    guard = store.record_epochs(owned=owned, points=[RunEpoch(run, c.config_id, record)])
    assert guard.owned == {c.config_id} and guard.cancelled == set()
    with db.transaction() as s:
        assert runs_repo.curve(s, run_id=run) == [CurvePoint(0, 2.0, 0.5, None, None, None, 1e-3, None)]
    result = ConfigResult(c.config_id, c.trial_id, [_converged(run)], 0.1, [(0, 2.0)], 1.0)
    assert store.finish_config(worker_id="w", result=result)
    assert not store.finish_config(worker_id="w", result=result)  # no longer running: not owned
    assert store.maybe_refine(sweep_id=sid) is False  # the spec asks for no refinement
    assert store.maybe_finish_sweep(sweep_id=sid) == SweepState.COMPLETED
    with db.transaction() as s:
        assert stored_report(s, sweep_id=sid) is None
    store.store_report(sweep_id=sid)
    with db.transaction() as s:
        report = stored_report(s, sweep_id=sid)
    assert report is not None and report.runs_done == 1 and report.markdown.startswith("# ")


def test_release_and_reap_put_work_back(db: Database, settings: Settings) -> None:
    store = DatabaseStore(db)
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}, seeds=1)
    first, second = store.claim(worker_id="w", max_replicas=4, live_workers=1)
    store.release(owned={first.config_id: first.trial_id})
    time.sleep(0.3)
    assert store.reap_stale(grace_s=0.2, max_retries=3) == 1  # ``second`` sent no heartbeat
    with db.transaction() as s:
        configs, _ = runs_repo.list_configs(s, sweep_id=sid)
    assert [c.state for c in configs] == [ConfigState.WAITING, ConfigState.WAITING]
    assert {c.trial_id for c in configs}.isdisjoint({first.trial_id, second.trial_id})
