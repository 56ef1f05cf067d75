"""Every built-in Keras loss the sweep trains with, by name, by class and with its settings."""

from __future__ import annotations

import json

import keras

from service.core.losses import LOSS_CLASSES, LOSS_FAMILY, loss_from_spec, parse_loss


def test_every_loss_name_and_class_keras_has() -> None:
    for name in LOSS_FAMILY:
        assert keras.losses.get(name).__name__ == name
        assert parse_loss(name).spec == name
    for cls, name in LOSS_CLASSES.items():
        serialized = keras.losses.serialize(getattr(keras.losses, cls)())
        info = parse_loss(json.loads(json.dumps(serialized)))
        assert info.name == name and loss_from_spec(info.spec) == info
    assert parse_loss("mse").name == "mean_squared_error" and parse_loss("kld").family == "categorical"


def test_loss_settings_travel_in_the_spec() -> None:
    logits = parse_loss(keras.losses.serialize(keras.losses.BinaryCrossentropy(from_logits=True)))
    assert logits.from_logits and logits.binary_threshold == 0.0 and logits.chance_is_prior_entropy
    smooth = parse_loss(keras.losses.serialize(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)))
    assert smooth.label_smoothing == 0.1 and not smooth.chance_is_prior_entropy
    assert parse_loss("hinge").binary_threshold == 0.0 and parse_loss("bce").binary_threshold == 0.5
    assert not parse_loss("categorical_hinge").chance_is_prior_entropy
