"""Finishing: the state a finished configuration takes, releasing on shutdown, closing a sweep."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.core.config import Settings
from service.core.db import Database
from service.core.records import RunOutcome
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.models import Config, Run
from service.core.states import ConfigState, RunStatus, SweepState
from service.core.work import claims as claims_module
from service.core.work.claims import claim
from service.core.work.finishing import final_state, finish_config, maybe_finish_sweep, release
from tests.helpers import finish_claim, new_sweep


def _outcome(status: RunStatus, error: str | None = None) -> RunOutcome:
    return RunOutcome(
        run_id=1,
        status=status,
        run_class=None,
        flags=[],
        metrics={},
        epochs_run=0,
        final_loss=None,
        final_accuracy=None,
        error=error,
    )


@pytest.mark.parametrize(
    ("statuses", "sweep_cancelled", "expected"),
    [
        ([RunStatus.COMPLETED, RunStatus.NONFINITE], False, ConfigState.COMPLETED),
        ([RunStatus.COMPLETED, RunStatus.ERROR], False, ConfigState.COMPLETED),
        ([RunStatus.ERROR, RunStatus.ERROR], False, ConfigState.FAILED),
        ([RunStatus.COMPLETED, RunStatus.CANCELLED], False, ConfigState.CANCELLED),
        ([RunStatus.ERROR, RunStatus.ERROR], True, ConfigState.CANCELLED),
        ([], False, ConfigState.COMPLETED),
    ],
)
def test_final_state(statuses: list[RunStatus], sweep_cancelled: bool, expected: ConfigState) -> None:
    assert final_state([_outcome(s) for s in statuses], sweep_cancelled=sweep_cancelled) == expected


def test_a_configuration_whose_seeds_all_errored_fails_with_the_error(
    db: Database, settings: Settings
) -> None:
    sweep_id = new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]})
    (taken,) = claim(db, "w")
    outs = [
        RunOutcome(**{**_outcome(RunStatus.ERROR, "ValueError: bad").__dict__, "run_id": r.run_id})
        for r in taken.runs
    ]
    assert finish_config(
        db,
        config_id=taken.config_id,
        trial_id=taken.trial_id,
        outcomes=outs,
        value=None,
        intermediate=[],
        worker_id="w",
        train_seconds=0.0,
    )
    assert maybe_finish_sweep(db, sweep_id) == "failed"
    with db.transaction() as s:
        cfg = s.scalars(select(Config)).one()
        assert (cfg.state, cfg.error) == ("failed", "ValueError: bad")
        assert set(s.scalars(select(Run.status))) == {"error"}


def test_released_configurations_wait_again_under_a_fresh_trial(db: Database, settings: Settings) -> None:
    sweep_id = new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]})
    taken = claim(db, "w", max_replicas=4)
    assert len(taken) == 2
    release(db, {c.config_id: c.trial_id for c in taken})
    with db.transaction() as s:
        assert set(s.scalars(select(Config.state))) == {"waiting"}
        assert s.scalar(select(func.count()).select_from(Run)) == 0
    again = claim(db, "other", max_replicas=4)
    assert {c.config_id for c in again} == {c.config_id for c in taken}
    assert not {c.trial_id for c in again} & {c.trial_id for c in taken}
    release(db, {c.config_id: c.trial_id for c in taken})  # no longer ours: nothing happens
    with db.transaction() as s:
        assert set(s.scalars(select(Config.state))) == {"running"}
    assert maybe_finish_sweep(db, sweep_id) is None  # work is running
    for c in again:
        assert finish_claim(db, c, worker_id="other", final_loss=0.1)
    assert maybe_finish_sweep(db, sweep_id) == "completed"
    assert maybe_finish_sweep(db, sweep_id) is None  # already finished


SAMPLED = {
    "sampler": {"type": "random", "n_trials": 2, "seed": 1},
    "space": {"learning_rate": {"low": 1e-3, "high": 1e-1, "log": True}, "batch_size": [4]},
    "seeds": 1,
}


def test_a_sampler_sweep_waits_for_a_configuration_asked_but_not_yet_stored(
    db: Database, settings: Settings
) -> None:
    """A worker counts its ask slot, then asks Optuna in Optuna's own transactions, then stores
    the configuration: between the two, the sweep must not be closed (it once closed with 3 of 4)."""
    sweep_id = new_sweep(db, settings, **SAMPLED)
    (first,) = claim(db, "w1")
    assert finish_claim(db, first, worker_id="w1", final_loss=0.5)
    with db.transaction() as s:
        assert sweeps_repo.take_ask_slot(s, sweep_id=sweep_id)  # w2 counted its slot, still asking
    assert maybe_finish_sweep(db, sweep_id) is None  # all asked, one stored: not done
    with db.transaction() as s:
        sweeps_repo.give_back_ask_slot(s, sweep_id=sweep_id)
    (second,) = claim(db, "w2")
    assert finish_claim(db, second, worker_id="w2", final_loss=0.4)
    assert maybe_finish_sweep(db, sweep_id) == SweepState.COMPLETED


def test_a_failed_ask_gives_its_slot_back(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = new_sweep(db, settings, **SAMPLED)

    def broken_ask(*args: object, **kwargs: object) -> None:
        raise RuntimeError("optuna is down")

    monkeypatch.setattr(claims_module.samplers, "ask", broken_ask)
    with pytest.raises(RuntimeError):
        claim(db, "w1")
    monkeypatch.undo()
    with db.transaction() as s:
        assert sweeps_repo.get_for_work(s, sweep_id=sweep_id).trials_asked == 0  # type: ignore[union-attr]
    assert len(claim(db, "w1")) == 1  # the slot is there to take again
