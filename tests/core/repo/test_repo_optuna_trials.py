"""service/core/repo/optuna_trials.py: what it writes into Optuna's tables, read back through Optuna."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from service.core.db import Database
from service.core.repo import optuna_trials
from service.core.timeutil import utcnow


def _study(db: Database) -> tuple[optuna.Study, int]:
    study = optuna.create_study(storage=db.optuna_storage(), study_name="s")
    return study, study._study_id


def test_grid_distributions_pick_the_kind_and_the_log_axis() -> None:
    d = optuna_trials.grid_distributions(
        {
            "learning_rate": [1e-3, 1e-1],
            "batch_size": [8, 64],
            "epochs_like": [1, 5],
            "momentum": [0.0, 0.9],
            "optimizer": ["adam", "sgd"],
            "nesterov": [True, False],
        }
    )
    assert d["learning_rate"] == FloatDistribution(1e-3, 1e-1, log=True)
    assert d["batch_size"] == IntDistribution(8, 64, log=True)
    assert d["epochs_like"] == IntDistribution(1, 5, log=False)  # only batch_size is a log integer
    assert d["momentum"] == FloatDistribution(0.0, 0.9, log=False)
    assert d["optimizer"] == CategoricalDistribution(["adam", "sgd"])
    assert d["nesterov"] == CategoricalDistribution([True, False])


def test_enqueued_trials_are_what_optuna_reads(db: Database) -> None:
    study, sid = _study(db)
    params = [
        {"learning_rate": 1e-3, "optimizer": "adam", "ignored": 1},
        {"learning_rate": 1e-1, "optimizer": "sgd"},
    ]
    dists = optuna_trials.grid_distributions({"learning_rate": [1e-3, 1e-1], "optimizer": ["adam", "sgd"]})
    with db.transaction() as s:
        assert optuna_trials.enqueue_trials(s, sid, [], dists, utcnow()) == []
        ids = optuna_trials.enqueue_trials(s, sid, params, dists, utcnow())
        assert optuna_trials.next_trial_number(s, sid) == 2
        assert optuna_trials.trial_numbers(s, ids) == {ids[0]: 0, ids[1]: 1}
        assert optuna_trials.trial_numbers(s, []) == {}
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.WAITING] * 2
    assert [t.params for t in trials] == [{"learning_rate": 1e-3, "optimizer": "adam"}, params[1]]


def test_cas_state_lets_one_caller_win_and_stamps_times(db: Database) -> None:
    study, sid = _study(db)
    dists = optuna_trials.grid_distributions({"learning_rate": [1e-3, 1e-2]})
    with db.transaction() as s:
        (tid,) = optuna_trials.enqueue_trials(s, sid, [{"learning_rate": 1e-3}], dists, utcnow())
        now = utcnow()
        assert optuna_trials.cas_state(s, tid, expect=TrialState.WAITING, new=TrialState.RUNNING, now=now)
        assert not optuna_trials.cas_state(s, tid, expect=TrialState.WAITING, new=TrialState.RUNNING, now=now)
    (t,) = study.get_trials(deepcopy=False)
    assert t.state == TrialState.RUNNING and t.datetime_start is not None and t.datetime_complete is None
    with db.transaction() as s:
        assert optuna_trials.cas_state(s, tid, expect=TrialState.RUNNING, new=TrialState.FAIL, now=utcnow())
    (t,) = study.get_trials(deepcopy=False)
    assert t.state == TrialState.FAIL and t.datetime_complete is not None


def test_copy_trial_as_waiting_keeps_the_params(db: Database) -> None:
    study, sid = _study(db)
    dists = optuna_trials.grid_distributions({"learning_rate": [1e-3, 1e-2], "batch_size": [4, 8]})
    with db.transaction() as s:
        (tid,) = optuna_trials.enqueue_trials(
            s, sid, [{"learning_rate": 1e-2, "batch_size": 8}], dists, utcnow()
        )
        new = optuna_trials.copy_trial_as_waiting(s, sid, tid, utcnow())
    old, copy = study.get_trials(deepcopy=False)
    assert new != tid and copy.number == 1 and copy.state == TrialState.WAITING
    assert copy.params == old.params == {"learning_rate": 1e-2, "batch_size": 8}


def test_write_results_stores_values_and_infinities_as_optuna_does(db: Database) -> None:
    study, sid = _study(db)
    dists = optuna_trials.grid_distributions({"learning_rate": [1e-3, 1e-2]})
    with db.transaction() as s:
        (tid,) = optuna_trials.enqueue_trials(s, sid, [{"learning_rate": 1e-3}], dists, utcnow())
        optuna_trials.write_results(s, tid, value=None, intermediate=[(0, 5.0), (4, 1.0)])  # replaced below
        optuna_trials.write_results(
            s, tid, value=math.inf, intermediate=[(0, 2.0), (1, math.inf), (2, -math.inf), (3, math.nan)]
        )
        optuna_trials.cas_state(s, tid, expect=TrialState.WAITING, new=TrialState.COMPLETE, now=utcnow())
    with pytest.raises(ValueError, match="NaN"), db.transaction() as s:
        optuna_trials.write_results(s, tid, value=math.nan, intermediate=[])
    (t,) = study.get_trials(deepcopy=False)
    assert t.value == math.inf
    inter = t.intermediate_values
    assert (
        set(inter) == {0, 1, 2, 3}
        and inter[0] == 2.0
        and inter[1] == math.inf
        and inter[2] == -math.inf
        and math.isnan(inter[3])
    )


def test_fail_waiting_fails_only_waiting_trials(db: Database) -> None:
    study, sid = _study(db)
    dists = optuna_trials.grid_distributions({"learning_rate": [1e-3, 1e-2]})
    with db.transaction() as s:
        a, _b = optuna_trials.enqueue_trials(
            s, sid, [{"learning_rate": 1e-3}, {"learning_rate": 1e-2}], dists, utcnow()
        )
        optuna_trials.cas_state(s, a, expect=TrialState.WAITING, new=TrialState.RUNNING, now=utcnow())
        assert optuna_trials.fail_waiting(s, sid, utcnow()) == 1
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.RUNNING, TrialState.FAIL]
