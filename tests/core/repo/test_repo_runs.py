"""service/core/repo/runs.py on a real database: the curve record <-> row mapping, filters and paging."""

from __future__ import annotations

import dataclasses
import math

import pytest

from service.core.config import Settings
from service.core.db import Database
from service.core.errors import NotFound
from service.core.records import CurvePoint, RunOutcome
from service.core.repo import runs as runs_repo
from service.core.repo.runs import ParamFilter, finite_or_none
from service.core.states import ConfigState, RunStatus
from service.core.timeutil import utcnow
from service.core.work.claims import claim
from tests.helpers import finish_claim, new_sweep

SPACE = {"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [4]}


def _point(epoch: int, value: float | None) -> CurvePoint:
    return CurvePoint(epoch, value, value, value, value, value, value, value)


def test_finite_or_none() -> None:
    assert finite_or_none(None) is None
    assert finite_or_none(math.nan) is None
    assert finite_or_none(math.inf) is None and finite_or_none(-math.inf) is None
    assert finite_or_none(3) == 3.0 and isinstance(finite_or_none(3), float)


def test_param_filter_matches_ranges_and_equality() -> None:
    assert ParamFilter("lr", low=0.1, high=1.0).matches({"lr": 0.1})
    assert ParamFilter("lr", low=0.1, high=1.0).matches({"lr": 1.0})
    assert not ParamFilter("lr", low=0.1).matches({"lr": 0.01})
    assert not ParamFilter("lr", high=0.1).matches({"lr": 0.2})
    assert not ParamFilter("lr", low=0.1).matches({"other": 1.0})  # absent name never matches
    assert not ParamFilter("flag", low=0).matches({"flag": True})  # booleans are not numbers
    assert not ParamFilter("opt", low=0).matches({"opt": "adam"})
    assert ParamFilter("opt", equals="adam").matches({"opt": "adam"})
    assert ParamFilter("bs", equals="32").matches({"bs": 32})  # query strings compare as text too
    assert not ParamFilter("opt", equals="sgd").matches({"opt": "adam"})


def test_curve_points_round_trip_with_non_finite_values_as_none(db: Database, settings: Settings) -> None:
    new_sweep(db, settings, space=SPACE, seeds=1)
    (c,) = claim(db, "w")
    run = c.runs[0].run_id
    points = [_point(0, 2.0), _point(1, math.nan), _point(2, math.inf), _point(3, None), _point(4, -math.inf)]
    with db.transaction() as s:
        stored = runs_repo.add_curve_points(
            s,
            points=[(run, p) for p in reversed(points)] + [(10**6, _point(0, 1.0))],
            config_ids=[c.config_id],
        )
    assert stored == 5  # the point of a run outside the configurations was dropped
    with db.transaction() as s:
        back = runs_repo.curve(s, run_id=run)
        assert runs_repo.curves_for_runs(s, run_ids=[run, 10**6]) == {run: back, 10**6: []}
        assert runs_repo.curves_for_runs(s, run_ids=[]) == {}
        assert runs_repo.add_curve_points(s, points=[], config_ids=[c.config_id]) == 0
    assert back == [_point(0, 2.0)] + [_point(e, None) for e in range(1, 5)]  # ordered by epoch


def test_start_runs_replaces_an_earlier_attempt_and_store_outcome_writes_nulls(
    db: Database, settings: Settings
) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=2)
    (c,) = claim(db, "w")
    with db.transaction() as s:
        runs_repo.add_curve_points(s, points=[(c.runs[0].run_id, _point(0, 1.0))], config_ids=[c.config_id])
        slots = runs_repo.start_runs(
            s,
            sweep_id=sid,
            config_id=c.config_id,
            trial_id=c.trial_id,
            worker_id="w2",
            seeds=[(1, 11, 21), (0, 10, 20)],
            now=utcnow(),
        )
    assert [(x.seed, x.init_seed, x.data_seed) for x in slots] == [(0, 10, 20), (1, 11, 21)]
    with db.transaction() as s:
        runs, total = runs_repo.list_runs(s, sweep_id=sid)
    assert total == 2 and {r.worker_id for r in runs} == {"w2"}  # the earlier attempt's runs are gone
    with db.transaction() as s:
        assert runs_repo.curves_for_runs(s, run_ids=[c.runs[0].run_id]) == {c.runs[0].run_id: []}
        outcome = RunOutcome(
            run_id=slots[0].run_id,
            status=RunStatus.NONFINITE,
            run_class="diverged",
            flags=["nonfinite"],
            metrics={"l0": 1.5},
            epochs_run=2,
            final_loss=math.nan,
            final_accuracy=math.inf,
            step_losses=[[0, 1.0]],
        )
        runs_repo.store_outcome(s, config_id=c.config_id, outcome=outcome, now=utcnow())
        # An outcome for a run of another configuration changes nothing.
        other = dataclasses.replace(outcome, status=RunStatus.ERROR)
        runs_repo.store_outcome(s, config_id=c.config_id + 1, outcome=other, now=utcnow())
    with db.transaction() as s:
        got = runs_repo.get_run(s, run_id=slots[0].run_id)
        assert runs_repo.get_run(s, run_id=slots[0].run_id, sweep_id=sid) == got
    assert got.status == RunStatus.NONFINITE and got.run_class == "diverged"
    assert got.final_loss is None and got.final_accuracy is None
    assert got.flags == ["nonfinite"] and got.metrics == {"l0": 1.5} and got.epochs_run == 2
    assert got.step_losses == [[0, 1.0]] and got.worker_id == "w2" and got.finished_at is not None
    assert got.params == c.params and (got.init_seed, got.data_seed) == (10, 20)


def test_get_run_and_get_config_raise_not_found(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=1)
    (c,) = claim(db, "w")
    with pytest.raises(NotFound), db.transaction() as s:
        runs_repo.get_run(s, run_id=10**6)
    with pytest.raises(NotFound, match="in sweep"), db.transaction() as s:
        runs_repo.get_run(s, run_id=c.runs[0].run_id, sweep_id=sid + 1)
    with pytest.raises(NotFound), db.transaction() as s:
        runs_repo.get_config(s, sweep_id=sid + 1, config_id=c.config_id)
    with db.transaction() as s:
        got = runs_repo.get_config(s, sweep_id=sid, config_id=c.config_id)
    assert got.state == ConfigState.RUNNING and got.trial_id == c.trial_id and got.trial_number is not None


def test_list_runs_filters_and_pages(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=2)
    taken = claim(db, "w", max_replicas=4) + claim(db, "w", max_replicas=4)
    assert len(taken) == 3
    finish_claim(db, taken[0], worker_id="w", final_loss=0.5)
    with db.transaction() as s:
        everything, total = runs_repo.list_runs(s, sweep_id=sid)
        assert total == 6 and len(everything) == 6
        assert [(r.config_id, r.seed) for r in everything] == sorted(
            (r.config_id, r.seed) for r in everything
        )
        assert runs_repo.all_runs(s, sweep_id=sid) == everything
        page, total = runs_repo.list_runs(s, sweep_id=sid, limit=2, offset=2)
        assert total == 6 and page == everything[2:4]
        done, total = runs_repo.list_runs(s, sweep_id=sid, status=RunStatus.COMPLETED)
        assert total == 2 and {r.config_id for r in done} == {taken[0].config_id}
        conv, total = runs_repo.list_runs(s, sweep_id=sid, run_class="converged", seed=1)
        assert total == 1 and conv[0].seed == 1
        one, total = runs_repo.list_runs(s, sweep_id=sid, config_id=taken[1].config_id)
        assert total == 2 and {r.config_id for r in one} == {taken[1].config_id}
        big = [ParamFilter("learning_rate", low=5e-3)]
        hi, total = runs_repo.list_runs(s, sweep_id=sid, filters=big, limit=1, offset=1)
        assert total == 4 and len(hi) == 1 and hi[0].params["learning_rate"] >= 5e-3
        assert runs_repo.list_runs(s, sweep_id=sid + 1) == ([], 0)


def test_list_configs_filters_pages_and_restricts_to_ids(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=1)
    (c,) = claim(db, "w")
    with db.transaction() as s:
        every, total = runs_repo.list_configs(s, sweep_id=sid)
        assert total == 3 and [x.id for x in every] == sorted(x.id for x in every)
        assert [x.trial_number for x in every] == [0, 1, 2]  # Optuna's numbers of their trials
        page, total = runs_repo.list_configs(s, sweep_id=sid, limit=1, offset=1)
        assert total == 3 and page == every[1:2]
        running, total = runs_repo.list_configs(s, sweep_id=sid, state=ConfigState.RUNNING)
        assert total == 1 and running[0].id == c.config_id and running[0].worker_id == "w"
        f = [ParamFilter("learning_rate", high=2e-2)]
        low, total = runs_repo.list_configs(s, sweep_id=sid, filters=f)
        assert total == 2 and all(x.params["learning_rate"] <= 2e-2 for x in low)
        only, total = runs_repo.list_configs(s, sweep_id=sid, config_ids={every[2].id}, filters=f)
        assert (only, total) == ([], 0)
        only, total = runs_repo.list_configs(s, sweep_id=sid, config_ids={every[2].id})
        assert total == 1 and only == [every[2]]


def test_delete_runs_removes_runs_and_their_curves(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space=SPACE, seeds=2)
    (c,) = claim(db, "w")
    run = c.runs[0].run_id
    with db.transaction() as s:
        runs_repo.add_curve_points(s, points=[(run, _point(0, 1.0))], config_ids=[c.config_id])
        runs_repo.delete_runs(s, config_id=c.config_id)
    with db.transaction() as s:
        assert runs_repo.list_runs(s, sweep_id=sid) == ([], 0)
        assert runs_repo.curve(s, run_id=run) == []
