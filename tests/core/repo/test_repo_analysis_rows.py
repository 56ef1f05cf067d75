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


def test_every_metric_the_analysis_reads_has_its_column() -> None:
    """A metric added to the seeds' or sharpness keys without a column (and migration) fails here."""
    from service.core.analysis.seeds import SEED_FLUCTUATION_KEYS
    from service.core.analysis.sharpness import SHARPNESS_KEYS
    from service.core.repo.analysis_rows import ANALYSIS_METRICS
    from service.core.repo.models import Run

    wanted = {"l0", "l_chance", "epochs_to_target", *SEED_FLUCTUATION_KEYS, *SHARPNESS_KEYS}
    assert set(ANALYSIS_METRICS) == wanted
    assert wanted <= set(Run.__table__.columns.keys())


def test_analysis_columns_keep_finite_numbers_only() -> None:
    metrics = {"l0": 2, "fluctuation": float("nan"), "jump_p90": float("inf"), "spikes": 3}
    cols = rows_repo.analysis_columns({**metrics, "epochs_to_target": 4.0, "other": "x"})
    assert cols["l0"] == 2.0 and isinstance(cols["l0"], float)
    assert cols["epochs_to_target"] == 4 and isinstance(cols["epochs_to_target"], int)
    assert cols["fluctuation"] is None and cols["jump_p90"] is None and cols["spikes"] == 3.0
    assert cols["sharpness_peak_ratio"] is None and "other" not in cols
    assert set(rows_repo.analysis_columns(None).values()) == {None}


def test_fluctuation_and_sharpness_read_back_from_their_columns(db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3], "batch_size": [4]}, seeds=2)
    (done,) = claim(db, "w", max_replicas=4)
    measured = {"l0": 2.0, "fluctuation": 0.12, "jump_p90": 1.4, "spikes": 2, "sharpness_peak_ratio": 0.9}
    outcomes = [
        RunOutcome(
            slot.run_id,
            RunStatus.COMPLETED,
            "noisy",
            ["spikes"],
            measured if slot.seed == 0 else {},
            5,
            1.0,
            None,
        )
        for slot in done.runs
    ]
    assert finish_with(db, done, outcomes, value=1.0)
    with db.transaction() as s:
        first, second = rows_repo.analysis_rows(s, sweep_id=sid)
    assert first.fluctuation == {"fluctuation": 0.12, "jump_p90": 1.4, "spikes": 2.0}
    assert first.sharpness == {"sharpness_peak_ratio": 0.9}
    assert second.fluctuation == {} and second.sharpness == {} and second.l0 is None
