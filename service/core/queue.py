"""The work queue on top of Optuna's trials: claim, heartbeat, record, finish, reap.

Ownership rule: a worker owns a configuration while ``configs.trial_id`` is
its trial and the configuration is ``running``. Every write a worker makes
starts with a guarded UPDATE of that row (which also takes the row's write
lock), so a worker presumed dead whose trial was failed and re-enqueued finds
its guard empty and its late result is dropped, never merged with the retry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.core.canonical import config_key
from service.core.db import Database
from service.core.records import Claim
from service.core.repo import optuna_trials
from service.core.repo.models import Config, CurvePoint, Run, Sweep, Worker
from service.core.repo.sweeps import ACTIVE_STATES
from service.core.spec import APPLIES_TO, OPTIMIZERS, Range, SweepSpec, seed_pairs
from service.core.timeutil import utcnow

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- claiming


def _seed_runs(
    session: Session, cfg: Config, sweep: Sweep, worker_id: str
) -> tuple[tuple[int, int, int, int], ...]:
    """Insert one ``running`` run per seed for this attempt; returns (run_id, seed, init, data)."""
    spec = SweepSpec.model_validate(sweep.spec)
    pairs = seed_pairs(spec.seeds)
    now = utcnow()
    session.execute(delete(Run).where(Run.config_id == cfg.id))
    session.execute(
        insert(Run),
        [
            {
                "sweep_id": sweep.id,
                "config_id": cfg.id,
                "trial_id": cfg.trial_id,
                "seed": seed,
                "init_seed": init_seed,
                "data_seed": data_seed,
                "status": "running",
                "flags": [],
                "metrics": {},
                "epochs_run": 0,
                "worker_id": worker_id,
                "started_at": now,
            }
            for seed, init_seed, data_seed in pairs
        ],
    )
    rows = session.execute(
        select(Run.id, Run.seed, Run.init_seed, Run.data_seed)
        .where(Run.config_id == cfg.id)
        .order_by(Run.seed)
    ).all()
    return tuple((r.id, r.seed, int(r.init_seed), int(r.data_seed)) for r in rows)


def _take(session: Session, cfg: Config, sweep: Sweep, worker_id: str) -> Claim | None:
    now = utcnow()
    assert cfg.trial_id is not None
    if not optuna_trials.cas_state(
        session, cfg.trial_id, expect=TrialState.WAITING, new=TrialState.RUNNING, now=now
    ):
        return None
    taken = session.execute(
        update(Config)
        .where(Config.id == cfg.id, Config.state == "waiting", Config.trial_id == cfg.trial_id)
        .values(state="running", worker_id=worker_id, heartbeat_at=now, started_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        # The configuration changed under us (cancelled); give the trial back.
        optuna_trials.cas_state(
            session, cfg.trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now
        )
        return None
    if sweep.state == "queued":
        sweep.state = "running"
        sweep.updated_at = now
    runs = _seed_runs(session, cfg, sweep, worker_id)
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(state="training", current_trial_id=cfg.trial_id, current_sweep_id=sweep.id, heartbeat_at=now)
    )
    return Claim(
        sweep_id=sweep.id,
        config_id=cfg.id,
        trial_id=cfg.trial_id,
        params=dict(cfg.params),
        runs=runs,
        spec=dict(sweep.spec),
        epochs=sweep.epochs,
    )


def claim(db: Database, worker_id: str, *, max_replicas: int = 1, live_workers: int = 1) -> list[Claim]:
    """Claim WAITING configurations of one sweep that share a batch size, to train as one pack.

    At most ``max_replicas`` seeds in all (at least one configuration), and no
    more than a fair share of what is waiting when other workers are live, so
    a small sweep still spreads over every worker. Oldest sweep first.
    Sampler sweeps are claimed through ``ask()`` when nothing is waiting.
    """
    with db.transaction() as s:
        for sweep in s.scalars(select(Sweep).where(Sweep.state.in_(ACTIVE_STATES)).order_by(Sweep.id)):
            base = select(Config).where(Config.sweep_id == sweep.id, Config.state == "waiting")
            first = s.scalar(base.order_by(Config.id).limit(1))
            if first is None:
                continue
            waiting = s.scalar(select(func.count()).select_from(base.subquery())) or 1
            # Fair share of what is waiting, counted in replicas and rounded down to a pack
            # bucket (a power of two): packs are full buckets (no padded replicas), and they
            # shrink as the sweep drains (guided self-scheduling), so the live workers finish
            # together. Rounding up let the first worker take 64 of 80 waiting replicas and
            # leave 16 to the other, which then idled for most of the sweep.
            seeds = max(1, sweep.n_seeds)
            fair_reps = -(-(waiting * seeds) // max(1, live_workers))
            bucket = 1
            while bucket * 2 <= fair_reps:
                bucket *= 2
            max_configs = max(1, min(max_replicas, bucket) // seeds)
            candidates = [first]
            if max_configs > 1:
                candidates += list(
                    s.scalars(
                        base.where(Config.id != first.id, Config.batch_size == first.batch_size)
                        .order_by(Config.id)
                        .limit(max_configs - 1)
                    )
                )
            claims = [c for c in (_take(s, cfg, sweep, worker_id) for cfg in candidates) if c is not None]
            if claims:
                return claims
    return _ask_sampler(db, worker_id)


def _sampler_for(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler.seed
    if spec.sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler.type == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def _suggest(trial: optuna.Trial, spec: SweepSpec, default_optimizer: str) -> dict[str, Any]:
    from service.core.proposals.grid import dimension_values
    from service.core.spec import DIMENSIONS

    params: dict[str, Any] = {}
    opt_values = dimension_values(spec.space.optimizer)
    params["optimizer"] = (
        trial.suggest_categorical("optimizer", opt_values) if opt_values else default_optimizer
    )
    for name in DIMENSIONS:
        if name == "optimizer":
            continue
        dim = getattr(spec.space, name)
        if dim is None or params["optimizer"] not in APPLIES_TO.get(name, OPTIMIZERS):
            continue
        if isinstance(dim, Range):
            if name == "batch_size":
                params[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
            else:
                params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        else:
            values = dimension_values(dim) or []
            params[name] = trial.suggest_categorical(name, values)
    return params


def _ask_sampler(db: Database, worker_id: str) -> list[Claim]:
    from service.core import workloads as catalogue

    with db.transaction() as s:
        sweeps = list(
            s.scalars(
                select(Sweep)
                .where(Sweep.state.in_(ACTIVE_STATES), Sweep.sampler != "grid")
                .order_by(Sweep.id)
            )
        )
        candidates = [
            (sw.id, sw.study_name, sw.n_configs, dict(sw.spec))
            for sw in sweeps
            if sw.trials_asked < sw.n_configs
        ]
    for sweep_id, study_name, n_trials, raw in candidates:
        with db.transaction() as s:
            won = s.execute(
                update(Sweep)
                .where(Sweep.id == sweep_id, Sweep.trials_asked < n_trials, Sweep.state.in_(ACTIVE_STATES))
                .values(trials_asked=Sweep.trials_asked + 1)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                continue
        spec = SweepSpec.model_validate(raw)
        preset = raw["workload"].get("preset")
        default_opt = (
            str(catalogue.PRESETS[preset].default_params.get("optimizer", "adam")) if preset else "adam"
        )
        study = optuna.load_study(
            study_name=study_name, storage=db.optuna_storage(), sampler=_sampler_for(spec)
        )
        trial = study.ask()
        params = _suggest(trial, spec, default_opt)
        with db.transaction() as s:
            sweep = s.get(Sweep, sweep_id)
            assert sweep is not None
            cfg = Config(
                sweep_id=sweep_id,
                key=config_key(params) + f"#{trial.number}",
                params=params,
                batch_size=params.get("batch_size"),
                state="waiting",
                trial_id=trial._trial_id,
                attempts=0,
                refine_round=0,
            )
            s.add(cfg)
            s.flush()
            now = utcnow()
            s.execute(
                update(Config)
                .where(Config.id == cfg.id)
                .values(state="running", worker_id=worker_id, heartbeat_at=now, started_at=now)
            )
            cfg.state = "running"
            if sweep.state == "queued":
                sweep.state = "running"
            runs = _seed_runs(s, cfg, sweep, worker_id)
            return [
                Claim(
                    sweep_id=sweep_id,
                    config_id=cfg.id,
                    trial_id=trial._trial_id,
                    params=params,
                    runs=runs,
                    spec=raw,
                    epochs=sweep.epochs,
                )
            ]
    return []


# ---------------------------------------------------------------- while training


@dataclass(frozen=True)
class GuardResult:
    owned: set[int]  # config ids still owned by the caller
    cancelled: set[int]  # owned configs whose sweep was cancelled


def _guard(session: Session, owned: Mapping[int, int]) -> GuardResult:
    """Refresh heartbeats of the caller's configurations and report which it still owns."""
    now = utcnow()
    still: set[int] = set()
    for config_id, trial_id in owned.items():
        res = session.execute(
            update(Config)
            .where(Config.id == config_id, Config.trial_id == trial_id, Config.state == "running")
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            still.add(config_id)
    cancelled: set[int] = set()
    if still:
        rows = session.execute(
            select(Config.id)
            .join(Sweep, Sweep.id == Config.sweep_id)
            .where(Config.id.in_(still), Sweep.state == "cancelled")
        ).all()
        cancelled = {r.id for r in rows}
    return GuardResult(owned=still, cancelled=cancelled)


def heartbeat(db: Database, worker_id: str, owned: Mapping[int, int]) -> GuardResult:
    with db.transaction() as s:
        result = _guard(s, owned)
        s.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=utcnow()))
        return result


@dataclass(frozen=True)
class EpochPoint:
    run_id: int
    config_id: int
    epoch: int
    loss: float | None
    accuracy: float | None
    running_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    grad_norm: float | None


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def record_epoch(db: Database, owned: Mapping[int, int], points: Sequence[EpochPoint]) -> GuardResult:
    """One transaction for an epoch of a whole pack: curve points of owned configs only.

    Non-finite values are stored as NULL (the run's status says it went non-finite).
    """
    with db.transaction() as s:
        guard = _guard(s, owned)
        rows = [
            {
                "run_id": p.run_id,
                "epoch": p.epoch,
                "loss": _finite(p.loss),
                "accuracy": _finite(p.accuracy),
                "running_loss": _finite(p.running_loss),
                "val_loss": _finite(p.val_loss),
                "val_accuracy": _finite(p.val_accuracy),
                "learning_rate": _finite(p.learning_rate),
                "grad_norm": _finite(p.grad_norm),
            }
            for p in points
            if p.config_id in guard.owned
        ]
        if rows:
            s.execute(insert(CurvePoint), rows)
        return guard


# ---------------------------------------------------------------- finishing


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    run_class: str | None
    flags: list[str]
    metrics: dict[str, Any]
    epochs_run: int
    final_loss: float | None
    final_accuracy: float | None
    error: str | None = None
    traceback: str | None = None
    step_losses: list[Any] | None = None


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
        guard = _guard(s, {config_id: trial_id})
        if config_id not in guard.owned:
            log.warning(
                "config %s: trial %s is no longer ours; dropping the late result", config_id, trial_id
            )
            return False
        cancelled = config_id in guard.cancelled or any(o.status == "cancelled" for o in outcomes)
        all_errors = bool(outcomes) and all(o.status == "error" for o in outcomes)
        for o in outcomes:
            s.execute(
                update(Run)
                .where(Run.id == o.run_id, Run.config_id == config_id)
                .values(
                    status=o.status,
                    run_class=o.run_class,
                    flags=o.flags,
                    metrics=o.metrics,
                    epochs_run=o.epochs_run,
                    final_loss=_finite(o.final_loss),
                    final_accuracy=_finite(o.final_accuracy),
                    error=o.error,
                    traceback=o.traceback,
                    step_losses=o.step_losses,
                    finished_at=now,
                )
            )
        if cancelled:
            state, trial_state = "cancelled", TrialState.FAIL
        elif all_errors:
            state, trial_state = "failed", TrialState.FAIL
        else:
            state, trial_state = "completed", TrialState.COMPLETE
        if trial_state == TrialState.COMPLETE:
            optuna_trials.write_results(s, trial_id, value=value, intermediate=intermediate)
        optuna_trials.cas_state(s, trial_id, expect=TrialState.RUNNING, new=trial_state, now=now)
        error = outcomes[0].error if all_errors else None
        s.execute(
            update(Config)
            .where(Config.id == config_id)
            .values(state=state, value=_finite(value), finished_at=now, worker_id=worker_id, error=error)
        )
        s.execute(update(Worker).where(Worker.id == worker_id).values(trials_done=Worker.trials_done + 1))
    return True


def release(db: Database, owned: Mapping[int, int]) -> None:
    """Give configurations back untrained (SIGTERM before they finished): WAITING again."""
    now = utcnow()
    with db.transaction() as s:
        for config_id, trial_id in owned.items():
            cfg = s.get(Config, config_id)
            if cfg is None or cfg.trial_id != trial_id or cfg.state != "running":
                continue
            optuna_trials.cas_state(s, trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now)
            sweep = s.get(Sweep, cfg.sweep_id)
            assert sweep is not None
            new_trial = optuna_trials.copy_trial_as_waiting(s, sweep.study_id, trial_id, now)
            s.execute(delete(Run).where(Run.config_id == config_id))
            cfg.state, cfg.trial_id, cfg.worker_id, cfg.heartbeat_at = "waiting", new_trial, None, None


def maybe_finish_sweep(db: Database, sweep_id: int) -> str | None:
    """Mark the sweep completed/failed when nothing is waiting or running; returns the new state."""
    with db.transaction() as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None or sweep.state not in ACTIVE_STATES:
            return None
        if sweep.sampler != "grid" and sweep.trials_asked < sweep.n_configs:
            return None
        pending = s.scalar(
            select(func.count())
            .select_from(Config)
            .where(Config.sweep_id == sweep_id, Config.state.in_(("waiting", "running")))
        )
        if pending:
            return None
        complete = s.scalar(
            select(func.count())
            .select_from(Config)
            .where(Config.sweep_id == sweep_id, Config.state == "completed")
        )
        now = utcnow()
        sweep.state = "completed" if complete else "failed"
        sweep.updated_at = now
        sweep.finished_at = now
        return sweep.state


# ---------------------------------------------------------------- reaping


def reap_stale(db: Database, *, grace_s: float, max_retries: int) -> int:
    """Fail trials whose heartbeat is older than the grace period and re-enqueue them.

    A configuration is retried at most ``max_retries`` times; after that it is
    failed for good with the reason stored. Returns how many were reaped.
    """
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db.transaction() as s:
        stale = list(
            s.execute(
                select(Config.id, Config.trial_id).where(
                    Config.state == "running", Config.heartbeat_at < cutoff
                )
            ).all()
        )
    reaped = 0
    for config_id, trial_id in stale:
        with db.transaction() as s:
            now = utcnow()
            res = s.execute(
                update(Config)
                .where(
                    Config.id == config_id,
                    Config.trial_id == trial_id,
                    Config.state == "running",
                    Config.heartbeat_at < cutoff,
                )
                .values(state="reaping")
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                continue  # a heartbeat or another reaper got there first
            cfg = s.get(Config, config_id)
            assert cfg is not None and cfg.trial_id is not None
            sweep = s.get(Sweep, cfg.sweep_id)
            assert sweep is not None
            optuna_trials.cas_state(s, cfg.trial_id, expect=TrialState.RUNNING, new=TrialState.FAIL, now=now)
            run_ids = select(Run.id).where(Run.config_id == config_id).scalar_subquery()
            s.execute(delete(CurvePoint).where(CurvePoint.run_id.in_(run_ids)))
            s.execute(delete(Run).where(Run.config_id == config_id))
            reason = f"worker {cfg.worker_id} stopped sending heartbeats (trial {cfg.trial_id})"
            if sweep.state == "cancelled":
                cfg.state, cfg.finished_at = "cancelled", now
            elif cfg.attempts < max_retries:
                cfg.trial_id = optuna_trials.copy_trial_as_waiting(s, sweep.study_id, cfg.trial_id, now)
                cfg.state, cfg.attempts, cfg.worker_id, cfg.heartbeat_at = (
                    "waiting",
                    cfg.attempts + 1,
                    None,
                    None,
                )
                cfg.error = reason
            else:
                cfg.state, cfg.finished_at = "failed", now
                cfg.error = f"{reason}; gave up after {max_retries} retries"
            reaped += 1
            log.warning("reaped config %s: %s", config_id, reason)
    return reaped
