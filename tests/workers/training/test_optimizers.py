"""Spec params -> Keras optimizer objects and schedule values."""

from __future__ import annotations

import math

import keras
import pytest

from service.core.spec import ScheduleOptions
from workers.training.optimizers import (
    KERAS_DEFAULTS,
    LinearWarmup,
    PlateauController,
    TriangularCyclicLR,
    build_optimizer,
    lr_at,
    resolve_optimizer_params,
)

SCHED = keras.optimizers.schedules


def _opt(params: dict[str, object], **kw: object) -> keras.optimizers.Optimizer:
    return build_optimizer(params, steps_per_epoch=10, schedule_options=ScheduleOptions(), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", keras.optimizers.Adam),
        ("adamw", keras.optimizers.AdamW),
        ("rmsprop", keras.optimizers.RMSprop),
        ("sgd", keras.optimizers.SGD),
    ],
)
def test_defaults_are_keras_defaults(name: str, cls: type) -> None:
    ours = _opt({"optimizer": name}).get_config()
    keras_cfg = cls().get_config()
    for key in KERAS_DEFAULTS[name]:
        assert ours[key] == pytest.approx(keras_cfg[key]), key
    assert ours["clipnorm"] is None


def test_hyperparameters_reach_keras() -> None:
    adam = _opt({"optimizer": "adam", "learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.99, "clipnorm": 1.0})
    assert isinstance(adam, keras.optimizers.Adam)
    cfg = adam.get_config()
    assert (cfg["beta_1"], cfg["beta_2"], cfg["clipnorm"]) == (0.5, 0.99, 1.0)
    assert cfg["learning_rate"] == pytest.approx(2e-4)
    adamw = _opt({"optimizer": "adamw", "weight_decay": 0.1}).get_config()
    assert adamw["weight_decay"] == pytest.approx(0.1)
    rms = _opt({"optimizer": "rmsprop", "rho": 0.5, "momentum": 0.3, "epsilon": 1e-5}).get_config()
    assert (rms["rho"], rms["momentum"], rms["epsilon"]) == (0.5, 0.3, 1e-5)
    sgd = _opt({"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "clipnorm": 0}).get_config()
    assert (sgd["momentum"], sgd["nesterov"], sgd["clipnorm"]) == (0.9, True, None)


def test_parameters_of_other_optimizers_are_ignored() -> None:
    resolved = resolve_optimizer_params({"optimizer": "sgd", "beta_1": 0.5, "rho": 0.3})
    assert "beta_1" not in resolved and "rho" not in resolved


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="adam, adamw, rmsprop, sgd"):
        resolve_optimizer_params({"optimizer": "lion"})
    with pytest.raises(ValueError, match="cosine"):
        resolve_optimizer_params({"schedule": "onecycle"})


def test_schedule_objects() -> None:
    p = {"optimizer": "sgd", "learning_rate": 0.1}
    cos = _opt({**p, "schedule": "cosine"}, epochs=5)._learning_rate
    assert isinstance(cos, SCHED.CosineDecay) and cos.decay_steps == 50
    exp = build_optimizer(
        {**p, "schedule": "exponential"},
        steps_per_epoch=10,
        schedule_options=ScheduleOptions(decay_rate=0.5, decay_steps=7),
    )._learning_rate
    assert isinstance(exp, SCHED.ExponentialDecay) and (exp.decay_rate, exp.decay_steps) == (0.5, 7)
    inv = _opt({**p, "schedule": "inverse_time"})._learning_rate
    assert isinstance(inv, SCHED.InverseTimeDecay) and inv.decay_steps == 1
    assert isinstance(_opt({**p, "schedule": "cyclic"})._learning_rate, TriangularCyclicLR)
    assert isinstance(_opt({**p, "schedule": "warmup"})._learning_rate, LinearWarmup)
    with pytest.raises(ValueError, match="epochs"):
        _opt({**p, "schedule": "cosine"})


def test_inverse_time_is_old_keras_decay() -> None:
    opt = build_optimizer(
        {"optimizer": "adam", "learning_rate": 1e-3, "schedule": "inverse_time"},
        steps_per_epoch=10,
        schedule_options=ScheduleOptions(decay=0.01),
    )
    for step in (0, 1, 10, 250):
        assert lr_at(opt, step) == pytest.approx(1e-3 / (1 + 0.01 * step), rel=1e-5)


def _clr(step: int, lo: float, hi: float, s: int) -> float:
    cycle = math.floor(1 + step / (2 * s))
    x = abs(step / s - 2 * cycle + 1)
    return lo + (hi - lo) * max(0.0, 1 - x)


def test_cyclic_matches_smith_triangular() -> None:
    opt = build_optimizer(
        {"optimizer": "adam", "schedule": "cyclic"},
        steps_per_epoch=10,
        schedule_options=ScheduleOptions(cyclic_min_lr=5e-6, cyclic_max_lr=3e-4, cyclic_step_size=200),
    )
    assert lr_at(opt, 0) == pytest.approx(5e-6, rel=1e-4)
    assert lr_at(opt, 200) == pytest.approx(3e-4, rel=1e-4)
    assert lr_at(opt, 400) == pytest.approx(5e-6, rel=1e-3)
    for step in (37, 150, 333, 601, 999):
        assert lr_at(opt, step) == pytest.approx(_clr(step, 5e-6, 3e-4, 200), rel=1e-4)


def test_warmup_and_cosine_values() -> None:
    warm = build_optimizer(
        {"optimizer": "sgd", "learning_rate": 0.1, "schedule": "warmup"},
        steps_per_epoch=4,
        schedule_options=ScheduleOptions(warmup_epochs=2),
    )
    assert [round(lr_at(warm, s), 6) for s in (0, 3, 7, 20)] == [0.0125, 0.05, 0.1, 0.1]
    cos = _opt({"optimizer": "sgd", "learning_rate": 0.1, "schedule": "cosine"}, epochs=2)
    assert lr_at(cos, 10) == pytest.approx(0.05, rel=1e-5)
    assert lr_at(cos, 20) == pytest.approx(0.0, abs=1e-7)


def test_plateau_controller_follows_keras_rule() -> None:
    ctrl = PlateauController(factor=0.5, patience=2, min_lr=0.1)
    lrs = []
    lr = 1.0
    for metric in [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]:
        lr = ctrl.update(metric, lr)
        lrs.append(lr)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1]
    assert PlateauController().update(float("nan"), 1e-3) == 1e-3


def test_plateau_from_options() -> None:
    ctrl = PlateauController.from_options(
        ScheduleOptions(plateau_factor=0.3, plateau_patience=4, plateau_min_lr=0.0)
    )
    assert (ctrl.factor, ctrl.patience, ctrl.min_lr) == (0.3, 4, 0.0)
