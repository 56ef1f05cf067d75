"""Finishing: store a configuration's results, give one back untrained, close a drained sweep."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from optuna.trial import TrialState

from service.core.db import Database
from service.core.records import RunOutcome
from service.core.repo import configs as configs_repo
from service.core.repo import optuna_trials
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.repo import workers as workers_repo
from service.core.states import ACTIVE_SWEEP_STATES, ConfigState, RunStatus, SweepState
from service.core.timeutil import utcnow
from service.core.work.ownership import guard

log = logging.getLogger(__name__)


def _all_errors(outcomes: Sequence[RunOutcome]) -> bool:
    return bool(outcomes) and all(o.status == RunStatus.ERROR for o in outcomes)


def final_state(outcomes: Sequence[RunOutcome], *, sweep_cancelled: bool) -> ConfigState:
    """A configuration is cancelled if its sweep or any seed was, failed if every seed errored."""
    if sweep_cancelled or any(o.status == RunStatus.CANCELLED for o in outcomes):
        return ConfigState.CANCELLED
    if _all_errors(outcomes):
        return ConfigState.FAILED
    return ConfigState.COMPLETED


def finish_config(
    db: Database,
    *,
    config_id: int,
    trial_id: int,
    outcomes: Sequence[RunOutcome],
    value: float | None,
    intermediate: Sequence[tuple[int, float]],
    worker_id: str,
    train_seconds: float,
) -> bool:
    """Store the runs' classes and tell Optuna, atomically; False if the worker lost the trial."""
    now = utcnow()
    with db.transaction() as s:
        owned = guard(s, {config_id: trial_id})
        if config_id not in owned.owned:
            log.warning(
                "config %s: trial %s is no longer ours; dropping the late result", config_id, trial_id
            )
            return False
        for o in outcomes:
            runs_repo.store_outcome(s, config_id=config_id, outcome=o, now=now)
        state = final_state(outcomes, sweep_cancelled=config_id in owned.cancelled)
        if state == ConfigState.COMPLETED:
            optuna_trials.write_results(s, trial_id, value=value, intermediate=intermediate)
            trial_state = TrialState.COMPLETE
        else:
            trial_state = TrialState.FAIL
        optuna_trials.cas_state(s, trial_id, expect=TrialState.RUNNING, new=trial_state, now=now)
        configs_repo.finish(
            s,
            config_id=config_id,
            state=state,
            value=value,
            worker_id=worker_id,
            error=outcomes[0].error if _all_errors(outcomes) else None,
            now=now,
        )
        workers_repo.count_trial_done(s, worker_id=worker_id)
    return True


def release(db: Database, owned: Mapping[int, int]) -> None:
    """Give configurations back untrained (SIGTERM before they finished): WAITING again.

    Each gets a fresh WAITING copy of its trial (Optuna never moves a trial
    back to WAITING), and the runs of this attempt are deleted.
    """
    now = utcnow()
    with db.transaction() as s:
        still = guard(s, owned).owned
        for config_id, trial_id in owned.items():
            if config_id not in still:
                continue
            cfg = configs_repo.get(s, config_id=config_id)
            sweep = None if cfg is None else sweeps_repo.get_for_work(s, sweep_id=cfg.sweep_id)
            assert sweep is not None
            optuna_trials.cas_state(s, trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now)
            new_trial = optuna_trials.copy_trial_as_waiting(s, sweep.study_id, trial_id, now)
            runs_repo.delete_runs(s, config_id=config_id)
            configs_repo.requeue(s, config_id=config_id, trial_id=new_trial)


def maybe_finish_sweep(db: Database, sweep_id: int) -> SweepState | None:
    """Mark the sweep completed/failed when nothing is waiting or running; returns the new state."""
    with db.transaction() as s:
        sweep = sweeps_repo.get_for_work(s, sweep_id=sweep_id)
        if sweep is None or sweep.state not in ACTIVE_SWEEP_STATES:
            return None
        if sweep.sampler != "grid":
            if sweep.trials_asked < sweep.n_configs:
                return None
            # A worker may have counted its ask slot and not yet stored the configuration
            # Optuna proposed (ask() runs in Optuna's own transactions): wait for it.
            made = configs_repo.count_in_states(s, sweep_id=sweep_id, states=tuple(ConfigState))
            if made < sweep.trials_asked:
                return None
        pending = configs_repo.count_in_states(
            s, sweep_id=sweep_id, states=(ConfigState.WAITING, ConfigState.RUNNING)
        )
        if pending:
            return None
        completed = configs_repo.count_in_states(s, sweep_id=sweep_id, states=(ConfigState.COMPLETED,))
        state = SweepState.COMPLETED if completed else SweepState.FAILED
        sweeps_repo.finish(s, sweep_id=sweep_id, state=state, now=utcnow())
        return state
