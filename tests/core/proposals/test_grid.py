"""Grid expansion: which configurations a grid spec names."""

from __future__ import annotations

import pytest

from service.core.proposals.grid import count_grid, iter_grid
from service.core.spec import SweepSpec


def _spec(**kw: object) -> SweepSpec:
    base: dict[str, object] = {"name": "s", "workload": {"preset": "sensor_lstm"}, "epochs": 5}
    base.update(kw)
    return SweepSpec.model_validate(base)


def test_grid_skips_dimensions_that_do_not_apply_to_the_optimizer() -> None:
    spec = _spec(
        space={
            "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True, "points": 4},
            "batch_size": [2, 32],
            "optimizer": ["adam", "sgd"],
            "beta_1": [0.5, 0.9],
            "beta_2": [0.99, 0.999],
        }
    )
    configs = list(iter_grid(spec, "rmsprop"))
    adam = [c for c in configs if c["optimizer"] == "adam"]
    sgd = [c for c in configs if c["optimizer"] == "sgd"]
    assert len(adam) == 4 * 2 * 2 * 2
    assert len(sgd) == 4 * 2  # betas do not multiply sgd
    assert all("beta_1" not in c for c in sgd)
    assert count_grid(spec, "rmsprop") == len(configs)
    assert adam[0]["learning_rate"] == pytest.approx(1e-4)


def test_default_optimizer_decides_applicability() -> None:
    spec = _spec(space={"learning_rate": [1e-3], "beta_1": [0.5, 0.9], "rho": [0.9, 0.99]})
    configs = list(iter_grid(spec, "rmsprop"))
    assert configs == [
        {"optimizer": "rmsprop", "learning_rate": 1e-3, "rho": 0.9},
        {"optimizer": "rmsprop", "learning_rate": 1e-3, "rho": 0.99},
    ]
