"""Sampler sweeps (random, TPE, QMC): ask the sweep's Optuna study for the next configuration.

The study's sampler proposes; the parameter names and which of them apply to
an optimizer are the spec's, so a sampled configuration looks like a grid's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from service.core import workloads as catalogue
from service.core.db import Database
from service.core.proposals.grid import dimension_values
from service.core.spec import PresetWorkload, SweepSpec
from service.core.spec_space import APPLIES_TO, DIMENSIONS, OPTIMIZERS, Range


@dataclass(frozen=True)
class Proposal:
    """A configuration a sampler proposed, as a RUNNING Optuna trial of the sweep's study."""

    trial_id: int
    number: int
    params: dict[str, Any]


def sampler_for(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler.seed
    if spec.sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler.type == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def suggest(trial: optuna.Trial, spec: SweepSpec, default_optimizer: str) -> dict[str, Any]:
    """The spec's dimensions, suggested through ``trial``; those the optimizer does not use are left out."""
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


def default_optimizer(spec: SweepSpec) -> str:
    """The preset's optimizer when the spec does not sweep one (adam for other workloads)."""
    if isinstance(spec.workload, PresetWorkload):
        return str(catalogue.PRESETS[spec.workload.preset].default_params.get("optimizer", "adam"))
    return "adam"


def ask(db: Database, *, study_name: str, spec: SweepSpec) -> Proposal:
    """Ask the study for one trial (Optuna's own transactions) and suggest its parameters."""
    study = optuna.load_study(study_name=study_name, storage=db.optuna_storage(), sampler=sampler_for(spec))
    trial = study.ask()
    params = suggest(trial, spec, default_optimizer(spec))
    return Proposal(trial_id=trial._trial_id, number=trial.number, params=params)
