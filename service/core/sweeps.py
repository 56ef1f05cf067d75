"""Creating a sweep: validate against limits and the workload, then enqueue.

One Optuna study per sweep. A grid is enqueued at once as WAITING trials (in
bulk); a sampler sweep (random/TPE/QMC) enqueues nothing and lets workers
``ask()`` the study up to ``n_trials``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import optuna
from pydantic import ValidationError

from service.core import spec_checks
from service.core import workloads as catalogue
from service.core.analysis.thresholds import Thresholds
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Conflict, InvalidSpec, LimitExceeded, NotFound, TooManyInFlight
from service.core.kinks import PRESET_KINKS, kinked_part
from service.core.proposals.grid import count_grid, iter_grid, swept_values
from service.core.records import SweepRecord
from service.core.repo import optuna_trials
from service.core.repo import sweeps as sweeps_repo
from service.core.repo import workloads as workloads_repo
from service.core.spec import (
    MAX_DB_ID,
    EntryPointWorkload,
    PresetWorkload,
    SweepSpec,
    UploadedWorkload,
    error_path,
    n_seeds,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedWorkload:
    key: str
    default_optimizer: str
    workload: dict[str, Any]  # the spec's workload block with parameters filled in
    n_train: int | None = None  # training examples, when known before a worker builds it
    has_weights: bool = False
    origin: str = "the default optimizer"  # where default_optimizer comes from, for messages
    kinks: str | None = None  # the first part of the model whose gradient jumps (service.core.kinks)


def parse_spec(data: Any) -> SweepSpec:
    """Validate a raw spec; errors name the field (used by the CLI; the API lets FastAPI do it)."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(error_path(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise InvalidSpec("invalid sweep spec: " + "; ".join(parts)) from exc


def resolve_workload(db: Database, spec: SweepSpec) -> ResolvedWorkload:
    ref = spec.workload
    if isinstance(ref, PresetWorkload):
        params = catalogue.resolve_preset_params(ref.preset, ref.params)
        info = catalogue.PRESETS[ref.preset]
        return ResolvedWorkload(
            key=f"preset:{ref.preset}",
            default_optimizer=str(info.default_params.get("optimizer", "adam")),
            workload={"preset": ref.preset, "params": params},
            n_train=catalogue.training_size(ref.preset, params),
            origin=f"preset {ref.preset}'s optimizer",
            kinks=PRESET_KINKS.get(ref.preset),
        )
    if isinstance(ref, UploadedWorkload):
        uploaded = None
        model_json = None
        if ref.id <= MAX_DB_ID:  # a larger id cannot be stored, so names nothing (and overflows SQLite)
            with db.transaction() as s:
                uploaded = workloads_repo.find_workload(s, workload_id=ref.id)
                model_json = workloads_repo.model_json(s, workload_id=ref.id)
        if uploaded is None:
            raise NotFound(
                f"workload.id: workload {ref.id} does not exist; upload one with POST /v1/workloads "
                "or list them with GET /v1/workloads"
            )
        compiled = (uploaded.compile or {}).get("params") or {}
        n_train = uploaded.summary.get("n_train")
        return ResolvedWorkload(
            key=f"workload:{ref.id}:{uploaded.name}",
            default_optimizer=str(compiled.get("optimizer", "adam")),
            workload={"id": ref.id},
            n_train=int(n_train) if isinstance(n_train, int) else None,
            has_weights=uploaded.has_weights,
            origin="the model's compiled optimizer" if compiled else "the default optimizer",
            kinks=kinked_part(_json_or_none(model_json or "")),
        )
    assert isinstance(ref, EntryPointWorkload)
    return ResolvedWorkload(
        key=f"entry_point:{ref.entry_point}",
        default_optimizer="adam",
        workload={"entry_point": ref.entry_point, "params": dict(ref.params)},
    )


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def check_limits(spec: SweepSpec, settings: Settings, n_configs: int) -> None:
    seeds = n_seeds(spec.seeds)
    if spec.epochs > settings.max_epochs:
        raise LimitExceeded(
            f"epochs: {spec.epochs} is over this server's limit of {settings.max_epochs} "
            "(setting SWEEPS_MAX_EPOCHS); ask for fewer epochs"
        )
    if seeds > settings.max_seeds:
        raise LimitExceeded(
            f"seeds: {seeds} seeds per configuration is over the limit of {settings.max_seeds} "
            "(SWEEPS_MAX_SEEDS); use fewer seeds"
        )
    if n_configs > settings.max_configs:
        raise LimitExceeded(
            f"space: the grid has {n_configs} configurations, over the limit of {settings.max_configs} "
            "(SWEEPS_MAX_CONFIGS); use fewer points per dimension or a sampler with n_trials"
        )
    if n_configs * seeds > settings.max_runs:
        raise LimitExceeded(
            f"{n_configs} configurations x {seeds} seeds = {n_configs * seeds} runs, over the limit of "
            f"{settings.max_runs} (SWEEPS_MAX_RUNS)"
        )
    if n_configs == 0:
        raise InvalidSpec("space: the sweep has no configuration to train")


def _check_thresholds(spec: SweepSpec) -> None:
    Thresholds().with_overrides(spec.stability)


def create_sweep(
    db: Database,
    settings: Settings,
    spec: SweepSpec,
    *,
    idempotency_key: str | None = None,
    token_id: int | None = None,
) -> tuple[SweepRecord, bool]:
    """Returns (sweep, created). A repeated idempotency key returns the first sweep.

    The spec is checked whole (workload, thresholds, what the workload allows) before the key is
    looked up: a bad spec is refused whatever key it carries (schemathesis found a replayed key
    that skipped the checks)."""
    resolved = resolve_workload(db, spec)
    _check_thresholds(spec)
    spec_checks.check_init(spec, resolved.has_weights, resolved.key)
    spec_checks.check_dimensions_apply(spec, resolved.default_optimizer, resolved.origin)
    spec_checks.check_batch_size(spec, resolved.n_train, resolved.key)
    spec_checks.check_products(spec, resolved.kinks, resolved.key)
    if idempotency_key is not None:
        with db.transaction() as s:
            found = sweeps_repo.find_by_idempotency_key(s, key=idempotency_key)
        if found is not None:
            return found, False
    if spec.sampler.type == "grid":
        n_configs = count_grid(spec, resolved.default_optimizer)
    else:
        assert spec.sampler.n_trials is not None
        n_configs = spec.sampler.n_trials
    check_limits(spec, settings, n_configs)
    with db.transaction() as s:
        if sweeps_repo.count_in_flight(s, token_id=token_id) >= settings.max_sweeps_in_flight_per_token:
            raise TooManyInFlight(
                f"{settings.max_sweeps_in_flight_per_token} sweeps are already queued or running for this "
                "token (SWEEPS_MAX_SWEEPS_IN_FLIGHT_PER_TOKEN); wait for one to finish or cancel one"
            )

    stored = spec.model_dump(mode="json")
    stored["workload"] = resolved.workload
    study_name = sweeps_repo.new_study_name()
    study = optuna.create_study(storage=db.optuna_storage(), study_name=study_name, direction="minimize")
    study_id = study._study_id
    try:
        with db.transaction() as s:
            sweep_id = sweeps_repo.insert_sweep(
                s,
                sweep=sweeps_repo.NewSweep(
                    name=spec.name,
                    spec=stored,
                    workload_key=resolved.key,
                    sampler=spec.sampler.type,
                    n_configs=n_configs,
                    n_seeds=n_seeds(spec.seeds),
                    epochs=spec.epochs,
                    study_id=study_id,
                    study_name=study_name,
                    idempotency_key=idempotency_key,
                    token_id=token_id,
                ),
            )
            if spec.sampler.type == "grid":
                values = swept_values(spec)
                values.setdefault("optimizer", [resolved.default_optimizer])
                sweeps_repo.enqueue_configs(
                    s,
                    sweep_id=sweep_id,
                    study_id=study_id,
                    configs=list(iter_grid(spec, resolved.default_optimizer)),
                    distributions=optuna_trials.grid_distributions(values),
                )
    except Conflict:
        optuna.delete_study(study_name=study_name, storage=db.optuna_storage())
        # Two requests with one Idempotency-Key raced past the lookup above; the
        # unique key let exactly one insert through. The loser answers with the
        # winner's sweep (its own study is gone, so nothing is orphaned).
        if idempotency_key is not None:
            with db.transaction() as s:
                found = sweeps_repo.find_by_idempotency_key(s, key=idempotency_key)
            if found is not None:
                return found, False
        raise
    except BaseException:
        optuna.delete_study(study_name=study_name, storage=db.optuna_storage())
        raise
    study.set_user_attr("stability_sweeps_id", sweep_id)
    study.set_user_attr("workload", resolved.key)
    with db.transaction() as s:
        record = sweeps_repo.get_sweep(s, sweep_id=sweep_id)
    log.info("sweep %s created: %s configurations x %s seeds", sweep_id, n_configs, record.n_seeds)
    return record, True


def delete_sweep(db: Database, sweep_id: int) -> None:
    with db.transaction() as s:
        study_name = sweeps_repo.delete_sweep_rows(s, sweep_id=sweep_id)
    try:
        optuna.delete_study(study_name=study_name, storage=db.optuna_storage())
    except KeyError:
        log.warning("optuna study %s was already gone", study_name)
