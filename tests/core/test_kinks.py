"""Which models' gradients jump (service.core.kinks): read from Keras JSON, and the presets' table."""

from __future__ import annotations

import json

import keras
import pytest

from service.core.kinks import PRESET_KINKS, kinked_part
from workers.workloads.presets import PRESET_CLASSES


def _config(model: keras.Model) -> object:
    return json.loads(model.to_json())


def test_the_preset_table_describes_the_built_models() -> None:
    """The API reads a table (it never imports TensorFlow); the workers build the real models."""
    assert set(PRESET_KINKS) == set(PRESET_CLASSES)
    for name, cls in PRESET_CLASSES.items():
        assert kinked_part(_config(cls({}).build_model())) == PRESET_KINKS[name], name


@pytest.mark.parametrize(
    ("layers", "found"),
    [
        ([keras.layers.Dense(4, activation="relu")], "Dense(activation='relu')"),
        ([keras.layers.Dense(4), keras.layers.ReLU()], "ReLU"),
        ([keras.layers.Reshape((2, 2, 1)), keras.layers.MaxPooling2D()], "MaxPooling2D"),
        ([keras.layers.Dense(4, activation="selu")], "Dense(activation='selu')"),
        ([keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(2, activation="softmax")], None),
        ([keras.layers.Reshape((4, 1)), keras.layers.LSTM(3)], None),
        (
            [keras.layers.Reshape((4, 1)), keras.layers.GRU(3, recurrent_activation="hard_sigmoid")],
            "GRU(recurrent_activation='hard_sigmoid')",
        ),
    ],
)
def test_kinked_part_names_the_first_layer_whose_gradient_jumps(layers: list, found: str | None) -> None:  # type: ignore[type-arg]
    model = keras.Sequential([keras.Input((4,)), *layers])
    got = kinked_part(_config(model))
    assert (
        got == found if found != "GRU" else (got is not None and got.startswith("GRU(recurrent_activation"))
    )


def test_a_functional_model_is_searched_through() -> None:
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, activation="tanh")(inputs)
    b = keras.layers.Dense(3, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Maximum()([a, b]))
    assert kinked_part(_config(model)) == "Maximum"
    assert kinked_part("not a model") is None and kinked_part(None) is None
