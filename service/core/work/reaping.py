"""Reaping: fail the trials of workers that stopped sending heartbeats, and retry them."""

from __future__ import annotations

import logging
from datetime import timedelta

from optuna.trial import TrialState

from service.core.db import Database
from service.core.repo import configs as configs_repo
from service.core.repo import optuna_trials
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.states import ConfigState, SweepState
from service.core.timeutil import utcnow

log = logging.getLogger(__name__)


def reap_stale(db: Database, *, grace_s: float, max_retries: int) -> int:
    """Fail trials whose heartbeat is older than the grace period and re-enqueue them.

    A configuration is retried at most ``max_retries`` times; after that it is
    failed for good with the reason stored. Returns how many were reaped. Each
    configuration is reaped in its own transaction, won by compare-and-set
    (RUNNING -> REAPING), so two reapers never both retry one.
    """
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db.transaction() as s:
        stale = configs_repo.stale(s, cutoff=cutoff)
    reaped = 0
    for config_id, trial_id in stale:
        with db.transaction() as s:
            now = utcnow()
            if not configs_repo.mark_reaping(s, config_id=config_id, trial_id=trial_id, cutoff=cutoff):
                continue  # a heartbeat or another reaper got there first
            cfg = configs_repo.get(s, config_id=config_id)
            sweep = None if cfg is None else sweeps_repo.get_for_work(s, sweep_id=cfg.sweep_id)
            assert cfg is not None and sweep is not None
            optuna_trials.cas_state(s, trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now)
            runs_repo.delete_runs(s, config_id=config_id)
            reason = f"worker {cfg.worker_id} stopped sending heartbeats (trial {trial_id})"
            if sweep.state == SweepState.CANCELLED:
                configs_repo.end(s, config_id=config_id, state=ConfigState.CANCELLED, now=now)
            elif cfg.attempts < max_retries:
                configs_repo.requeue(
                    s,
                    config_id=config_id,
                    trial_id=optuna_trials.copy_trial_as_waiting(s, sweep.study_id, trial_id, now),
                    attempts=cfg.attempts + 1,
                    error=reason,
                )
            else:
                configs_repo.end(
                    s,
                    config_id=config_id,
                    state=ConfigState.FAILED,
                    now=now,
                    error=f"{reason}; gave up after {max_retries} retries",
                )
            reaped += 1
            log.warning("reaped config %s: %s", config_id, reason)
    return reaped
