"""Sampler sweeps: what a sampled configuration holds, and which Optuna sampler proposes it."""

from __future__ import annotations

import optuna
import pytest

from service.core.proposals.samplers import default_optimizer, sampler_for, suggest
from service.core.spec import SweepSpec


def _spec(sampler: str = "random", **space: object) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "name": "s",
            "workload": {"preset": "sensor_lstm"},
            "epochs": 2,
            "space": space,
            "sampler": {"type": sampler, "n_trials": 8, "seed": 3},
        }
    )


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("tpe", optuna.samplers.TPESampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_sampler_for_the_spec(kind: str, cls: type) -> None:
    assert isinstance(sampler_for(_spec(kind)), cls)


def test_suggested_parameters_follow_the_space_and_the_optimizer() -> None:
    spec = _spec(
        learning_rate={"low": 1e-4, "high": 1e-1, "log": True},
        batch_size={"low": 2, "high": 64, "log": True},
        optimizer=["adam", "sgd"],
        beta_1=[0.5, 0.9],
        momentum=[0.0, 0.9],
    )
    study = optuna.create_study(sampler=sampler_for(spec))
    seen = set()
    for _ in range(20):
        params = suggest(study.ask(), spec, default_optimizer(spec))
        seen.add(params["optimizer"])
        assert 1e-4 <= params["learning_rate"] <= 1e-1
        assert isinstance(params["batch_size"], int) and 2 <= params["batch_size"] <= 64
        if params["optimizer"] == "adam":
            assert params["beta_1"] in (0.5, 0.9) and "momentum" not in params
        else:
            assert params["momentum"] in (0.0, 0.9) and "beta_1" not in params
    assert seen == {"adam", "sgd"}


def test_an_unswept_optimizer_is_the_workloads_default() -> None:
    spec = _spec(learning_rate=[1e-3, 1e-2], rho=[0.9, 0.99], beta_1=[0.5])
    assert default_optimizer(spec) == "rmsprop"  # sensor_lstm's
    params = suggest(optuna.create_study(sampler=sampler_for(spec)).ask(), spec, default_optimizer(spec))
    assert params["optimizer"] == "rmsprop" and "rho" in params and "beta_1" not in params
