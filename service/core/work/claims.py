"""Claiming: which waiting configurations a worker takes next, and taking them.

A worker takes a pack of configurations of one sweep that share a batch size
(so they train as one packed model), oldest sweep first. Sampler sweeps with
nothing waiting are claimed through Optuna's ``ask()``.
"""

from __future__ import annotations

from optuna.trial import TrialState
from sqlalchemy.orm import Session

from service.core.canonical import config_key
from service.core.db import Database
from service.core.proposals import samplers
from service.core.records import Claim, RunSlot
from service.core.repo import configs as configs_repo
from service.core.repo import optuna_trials
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.repo import workers as workers_repo
from service.core.repo.configs import QueuedConfig
from service.core.repo.sweeps import WorkSweep
from service.core.spec import SweepSpec, seed_pairs
from service.core.states import ConfigState, SweepState
from service.core.timeutil import utcnow


def pack_size(*, waiting: int, n_seeds: int, live_workers: int, max_replicas: int) -> int:
    """How many configurations one claim takes: the fair share, rounded down to a pack bucket.

    The fair share is what is waiting, counted in replicas (configurations x
    seeds), divided by the live workers. It is rounded down to a power of two
    so packs are full buckets (no padded replicas), and it shrinks as the
    sweep drains (guided self-scheduling, Polychronopoulos & Kuck 1987), so
    the live workers finish together. Rounding up let the first worker take
    64 of 80 waiting replicas and leave 16 to the other, which then idled for
    most of the sweep. At least one configuration, and never more than
    ``max_replicas`` seeds in all unless one configuration alone has more.
    """
    seeds = max(1, n_seeds)
    fair_reps = -(-(max(1, waiting) * seeds) // max(1, live_workers))
    bucket = 1
    while bucket * 2 <= fair_reps:
        bucket *= 2
    return max(1, min(max_replicas, bucket) // seeds)


def claim(db: Database, worker_id: str, *, max_replicas: int = 1, live_workers: int = 1) -> list[Claim]:
    """Claim WAITING configurations of one sweep that share a batch size, to train as one pack.

    At most ``max_replicas`` seeds in all (at least one configuration), and no
    more than a fair share of what is waiting when other workers are live
    (``pack_size``), so a small sweep still spreads over every worker. Oldest
    sweep first. Sampler sweeps are claimed through ``ask()`` when nothing is waiting.
    """
    with db.transaction() as s:
        for sweep in sweeps_repo.active_for_work(s):
            first = configs_repo.oldest_waiting(s, sweep_id=sweep.id)
            if first is None:
                continue
            waiting = configs_repo.count_in_states(s, sweep_id=sweep.id, states=(ConfigState.WAITING,))
            size = pack_size(
                waiting=waiting, n_seeds=sweep.n_seeds, live_workers=live_workers, max_replicas=max_replicas
            )
            candidates = [first]
            if size > 1:
                candidates += configs_repo.waiting_with_batch_size(
                    s, sweep_id=sweep.id, batch_size=first.batch_size, after=first.id, limit=size - 1
                )
            spec = SweepSpec.model_validate(sweep.spec)
            claims = [
                c for c in (_take(s, cfg, sweep, spec, worker_id) for cfg in candidates) if c is not None
            ]
            if claims:
                return claims
    return _claim_sampled(db, worker_id)


def _take(
    session: Session, cfg: QueuedConfig, sweep: WorkSweep, spec: SweepSpec, worker_id: str
) -> Claim | None:
    """Take one waiting configuration: its Optuna trial WAITING -> RUNNING, then our row."""
    now = utcnow()
    assert cfg.trial_id is not None
    if not optuna_trials.cas_state(
        session, cfg.trial_id, expect=TrialState.WAITING, new=TrialState.RUNNING, now=now
    ):
        return None
    if not configs_repo.take(session, config_id=cfg.id, trial_id=cfg.trial_id, worker_id=worker_id, now=now):
        # The configuration changed under us (cancelled); give the trial back.
        optuna_trials.cas_state(
            session, cfg.trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now
        )
        return None
    return _started(session, sweep, spec, cfg.id, cfg.trial_id, cfg.params, worker_id)


def _started(
    session: Session,
    sweep: WorkSweep,
    spec: SweepSpec,
    config_id: int,
    trial_id: int,
    params: dict[str, object],
    worker_id: str,
) -> Claim:
    """A configuration just became ours: the sweep is running, one run per seed, the worker training."""
    now = utcnow()
    if sweep.state == SweepState.QUEUED:
        sweeps_repo.mark_running(session, sweep_id=sweep.id, now=now)
    runs: tuple[RunSlot, ...] = runs_repo.start_runs(
        session,
        sweep_id=sweep.id,
        config_id=config_id,
        trial_id=trial_id,
        worker_id=worker_id,
        seeds=seed_pairs(spec.seeds),
        now=now,
    )
    workers_repo.mark_training(session, worker_id=worker_id, trial_id=trial_id, sweep_id=sweep.id, now=now)
    return Claim(
        sweep_id=sweep.id,
        config_id=config_id,
        trial_id=trial_id,
        params=dict(params),
        runs=runs,
        spec=spec,
        epochs=sweep.epochs,
    )


def _claim_sampled(db: Database, worker_id: str) -> list[Claim]:
    """One configuration from the oldest sampler sweep that still has trials to ask.

    The ask slot is taken by compare-and-set in its own transaction before
    Optuna is asked, so concurrent workers never ask a study for more than
    ``n_trials`` trials; Optuna's ``ask()`` runs in Optuna's own transactions.
    """
    with db.transaction() as s:
        candidates = [
            sw for sw in sweeps_repo.active_for_work(s, samplers_only=True) if sw.trials_asked < sw.n_configs
        ]
    for sweep in candidates:
        with db.transaction() as s:
            if not sweeps_repo.take_ask_slot(s, sweep_id=sweep.id):
                continue
        spec = SweepSpec.model_validate(sweep.spec)
        try:
            proposal = samplers.ask(db, study_name=sweep.study_name, spec=spec)
            with db.transaction() as s:
                now = utcnow()
                config_id = configs_repo.insert_running(
                    s,
                    sweep_id=sweep.id,
                    key=config_key(proposal.params) + f"#{proposal.number}",
                    params=proposal.params,
                    trial_id=proposal.trial_id,
                    worker_id=worker_id,
                    now=now,
                )
                current = sweeps_repo.get_for_work(s, sweep_id=sweep.id)
                assert current is not None
                return [_started(s, current, spec, config_id, proposal.trial_id, proposal.params, worker_id)]
        except BaseException:
            # The slot was counted but no configuration row stands for it: give it
            # back, or the sweep would wait forever for a configuration never made.
            with db.transaction() as s:
                sweeps_repo.give_back_ask_slot(s, sweep_id=sweep.id)
            raise
    return []
