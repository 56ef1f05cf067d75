"""Compile settings: Keras' own compile configs become the sweep's defaults, or a refusal that says why."""

from __future__ import annotations

import keras
import pytest

from service.core.compile_settings import (
    KERAS_DEFAULTS,
    CompileSettings,
    metric_names,
    optimizer_params,
    parse_compile_config,
)
from service.core.errors import InvalidSpec
from service.core.losses import parse_loss


def _compiled(optimizer: object, loss: object = "sparse_categorical_crossentropy", **kw: object) -> dict:  # type: ignore[type-arg]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss=loss, **kw)  # type: ignore[arg-type]
    return dict(model.get_compile_config())


def test_rmsprop_with_all_its_settings() -> None:
    opt = keras.optimizers.RMSprop(learning_rate=3e-3, rho=0.8, momentum=0.5, epsilon=1e-6, clipnorm=1.0)
    settings = parse_compile_config(_compiled(opt, metrics=["accuracy"]))
    assert settings.params == {
        "optimizer": "rmsprop",
        "learning_rate": 3e-3,
        "rho": 0.8,
        "momentum": 0.5,
        "epsilon": 1e-6,
        "clipnorm": 1.0,
    }
    assert settings.metrics == ["accuracy"] and settings.loss == "sparse_categorical_crossentropy"
    record = settings.record(parse_loss(settings.loss))
    assert record["params"]["rho"] == 0.8 and record["loss"] == "sparse_categorical_crossentropy"


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (keras.optimizers.Adam(beta_1=0.5), {"optimizer": "adam", "beta_1": 0.5, "beta_2": 0.999}),
        (keras.optimizers.AdamW(weight_decay=0.01), {"optimizer": "adamw", "weight_decay": 0.01}),
        (keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True), {"momentum": 0.9, "nesterov": True}),
        ("rmsprop", {"optimizer": "rmsprop", "rho": 0.9}),
    ],
)
def test_other_optimizers(optimizer: object, expected: dict) -> None:  # type: ignore[type-arg]
    params = parse_compile_config(_compiled(optimizer)).full_params()
    assert expected.items() <= params.items()
    assert set(KERAS_DEFAULTS[params["optimizer"]]) <= set(params)


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        (keras.optimizers.Adagrad(), "'Adagrad' is not supported"),
        (keras.optimizers.RMSprop(centered=True), "centered=True is not supported"),
        (keras.optimizers.Adam(amsgrad=True), "amsgrad=True is not supported"),
        (keras.optimizers.SGD(clipvalue=0.5), "clipvalue=0.5 is not supported"),
        (keras.optimizers.Adam(weight_decay=0.1), "weight decay is supported with AdamW only"),
        (
            keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)),
            "learning-rate schedule object is not supported",
        ),
        ("adadelta", "'adadelta' is not supported"),
    ],
)
def test_optimizer_settings_the_trainers_cannot_reproduce_are_refused(
    optimizer: object, message: str
) -> None:
    config = _compiled(optimizer) if not isinstance(optimizer, str) else {"optimizer": optimizer}
    with pytest.raises(InvalidSpec, match=message):
        parse_compile_config(config)


def test_compile_config_refusals() -> None:
    with pytest.raises(InvalidSpec, match="loss_weights is not supported"):
        parse_compile_config({"optimizer": "adam", "loss_weights": [0.5]})
    with pytest.raises(InvalidSpec, match="must be the object"):
        parse_compile_config(["adam"])
    with pytest.raises(InvalidSpec, match="not a setting the sweep knows"):
        optimizer_params({"class_name": "Adam", "config": {"turbo": True}})
    with pytest.raises(InvalidSpec, match="must be a finite number"):
        optimizer_params({"class_name": "Adam", "config": {"beta_1": "high"}})
    assert parse_compile_config({}) == CompileSettings(params={}, loss=None, metrics=[])


def test_metrics() -> None:
    assert metric_names(["accuracy", "mae"]) == ["accuracy", "mae"]
    assert metric_names([keras.metrics.serialize(keras.metrics.AUC())]) == ["auc"]
    assert metric_names(None) == []
    with pytest.raises(InvalidSpec, match="not supported"):
        metric_names(["f1_magic"])
    with pytest.raises(InvalidSpec, match="not a built-in Keras metric"):
        metric_names([{"module": "team.metrics", "class_name": "Magic", "config": {"name": "magic"}}])
    with pytest.raises(InvalidSpec, match="per output"):
        metric_names({"out": ["accuracy"]})
