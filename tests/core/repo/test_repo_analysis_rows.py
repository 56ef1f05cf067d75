"""service/core/repo/analysis_rows.py: the lean reads of the results views on a real database."""

from __future__ import annotations

from service.core.config import Settings
from service.core.db import Database
from service.core.records import RunOutcome
from service.core.repo import analysis_rows as rows_repo
from service.core.repo import optuna_trials
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.analysis_rows import RunDetails
from service.core.states import RunStatus
from service.core.work.claims import claim
from tests.helpers import finish_with, new_sweep


def test_rows_carry_the_extracted_metrics_and_details_the_whole_json(
    db: Database, settings: Settings
) -> None:
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}, seeds=2)
    done, running = claim(db, "w", max_replicas=4)
    metrics = {"l0": 2.5, "l_chance": 1.79, "epochs_to_target": 3, "other": [1, 2]}
    outcomes = [
        RunOutcome(slot.run_id, RunStatus.COMPLETED, "converged", ["regressing"], metrics, 3, 0.25, 0.75)
        if slot.seed == 0
        else RunOutcome(slot.run_id, RunStatus.NONFINITE, "diverged", [], {"l0": 2.5}, 1, None, None)
        for slot in done.runs
    ]
    assert finish_with(db, done, outcomes, value=0.25)
    with db.transaction() as s:
        rows = rows_repo.analysis_rows(s, sweep_id=sid)
        details = rows_repo.run_details(s, sweep_id=sid)
        assert rows_repo.analysis_rows(s, sweep_id=sid + 1) == []
    assert [(r.config_id, r.seed) for r in rows] == sorted(
        (c.config_id, x.seed) for c in (done, running) for x in c.runs
    )
    good, bad = rows[0], rows[1]
    assert (good.status, good.run_class, good.final_loss, good.final_accuracy) == (
        "completed",
        "converged",
        0.25,
        0.75,
    )
    assert (good.l0, good.l_chance, good.epochs_to_target) == (2.5, 1.79, 3)
    assert isinstance(good.epochs_to_target, int) and good.params == done.params
    assert (bad.status, bad.l0, bad.l_chance, bad.epochs_to_target, bad.final_loss) == (
        "nonfinite",
        2.5,
        None,
        None,
        None,
    )
    assert rows[2].status == "running" and rows[2].run_class is None and rows[2].l0 is None
    assert rows[2].params is rows[3].params  # one dict per configuration, shared by its runs
    assert details[good.run_id].metrics == metrics and details[good.run_id].flags == ["regressing"]
    assert details[bad.run_id].flags == []
    assert set(details) == {r.run_id for r in rows}


def test_run_details_decode_text_or_take_decoded_values() -> None:
    assert RunDetails('{"a": 1}', '["x"]').metrics == {"a": 1}
    assert RunDetails('{"a": 1}', '["x"]').flags == ["x"]
    assert RunDetails({"a": 1}, ["x"]).metrics == {"a": 1}  # a driver that decodes JSON itself
    assert RunDetails(None, None).metrics == {} and RunDetails(None, None).flags == []


def test_refined_configs_leave_the_grid_out(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}, seeds=1)
    dims = {"learning_rate": [1e-3, 1e-2], "batch_size": [4]}
    with db.transaction() as s:
        assert rows_repo.refined_configs(s, sweep_id=sid) == {}
        study_id = sweeps_repo.get_sweep(s, sweep_id=sid).study_id
        for rnd, lr in ((1, 3e-3), (2, 5e-3)):
            sweeps_repo.enqueue_configs(
                s,
                sweep_id=sid,
                study_id=study_id,
                configs=[{"learning_rate": lr, "batch_size": 4}],
                distributions=optuna_trials.grid_distributions(dims),
                refine_round=rnd,
            )
    with db.transaction() as s:
        refined = rows_repo.refined_configs(s, sweep_id=sid)
        configs, _ = runs_repo.list_configs(s, sweep_id=sid)
    by_lr = {c.params["learning_rate"]: c.id for c in configs}
    assert refined == {by_lr[3e-3]: 1, by_lr[5e-3]: 2}
