"""Does a model fit its dataset and its loss: each loss family's labels and outputs, each refusal."""

from __future__ import annotations

import json

import keras
import pytest

from service.core.errors import InvalidSpec
from service.core.model_checks import inspect_keras_model
from service.core.uploads import DatasetSummary
from tests.core.test_uploads import _dense_json


def _summary(label_format: str = "one_hot", num_classes: int = 3) -> DatasetSummary:
    return DatasetSummary(20, 0, (5,), label_format, num_classes, "float32")  # type: ignore[arg-type]


def test_good_model() -> None:
    info = inspect_keras_model(_dense_json(), _summary(), "categorical_crossentropy")
    assert info["output_units"] == 3 and info["input_shape"] == [5] and info["layers"] == ["Dense", "Dense"]
    assert info["num_params"] == 5 * 8 + 8 + 8 * 3 + 3 and info["warnings"] == []
    assert info["task"] == "multiclass" and info["loss_spec"] == "categorical_crossentropy"
    more = inspect_keras_model(
        _dense_json(units=4), _summary("integer", 3), "sparse_categorical_crossentropy"
    )
    assert "4 outputs for 3 classes" in more["warnings"][0]


def test_binary_classifier_with_one_sigmoid_output() -> None:
    info = inspect_keras_model(_dense_json(units=1, activation="sigmoid"), _summary("integer", 2), "bce")
    assert info["task"] == "binary" and info["loss"] == "binary_crossentropy" and info["warnings"] == []
    logits = {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {"from_logits": True}}
    info = inspect_keras_model(_dense_json(units=1, activation="linear"), _summary("integer", 2), logits)
    assert info["from_logits"] is True and json.loads(info["loss_spec"])["config"]["from_logits"] is True
    hinge = inspect_keras_model(_dense_json(units=1, activation="tanh"), _summary("integer", 2), "hinge")
    assert hinge["task"] == "binary"
    # A sigmoid loss on a softmax-less output still trains, with a warning.
    warned = inspect_keras_model(_dense_json(units=1, activation="relu"), _summary("integer", 2), "bce")
    assert "not sigmoid" in warned["warnings"][0]


def test_regression_losses_and_whole_number_targets() -> None:
    for loss in ("mean_squared_error", "mse", "mae", "huber", "log_cosh"):
        info = inspect_keras_model(_dense_json(units=1, activation="linear"), _summary("regression", 0), loss)
        assert info["task"] == "regression"
    # Whole-number targets (e.g. the diabetes scores) are regression targets under a regression loss.
    info = inspect_keras_model(_dense_json(units=1, activation="linear"), _summary("integer", 300), "mse")
    assert info["task"] == "regression"


@pytest.mark.parametrize(
    ("model_json", "summary", "loss", "message"),
    [
        (_dense_json(inputs=6), _summary(), "categorical_crossentropy", "expects inputs of shape (6,)"),
        (
            _dense_json(units=4),
            _summary(),
            "categorical_crossentropy",
            "4 outputs but the one-hot labels have 3",
        ),
        (_dense_json(units=2), _summary("integer", 3), "sparse_categorical_crossentropy", "at least 3 units"),
        (_dense_json(units=2), _summary("regression", 0), "mse", "needs 1"),
        (_dense_json(), _summary(), "sparse_categorical_crossentropy", "use categorical_crossentropy"),
        (_dense_json(), _summary(), "hinge", "does not fit one_hot labels"),
        (_dense_json(), _summary(), "ctc", "not a built-in Keras loss the sweep can train with"),
        (_dense_json(units=3), _summary("integer", 3), "binary_crossentropy", "is for two classes"),
        (_dense_json(units=2), _summary("integer", 2), "binary_crossentropy", "needs one"),
        (
            _dense_json(units=1),
            _summary("regression", 0),
            "categorical_crossentropy",
            "does not fit regression",
        ),
        (_dense_json(), _summary(), {"class_name": "MyLoss", "module": "team.losses"}, "custom losses"),
        (_dense_json(), _summary(), {"class_name": "Dice", "config": {}}, "not supported"),
        (
            _dense_json(),
            _summary(),
            {"class_name": "CategoricalCrossentropy", "config": {"reduction": "sum"}},
            "reduction 'sum' is not supported",
        ),
        (_dense_json(), _summary(), 3, "must be a Keras loss name"),
    ],
)
def test_model_dataset_mismatches(
    model_json: str, summary: DatasetSummary, loss: object, message: str
) -> None:
    with pytest.raises(InvalidSpec) as err:
        inspect_keras_model(model_json, summary, loss)
    assert message in err.value.detail


def test_functional_model_is_accepted() -> None:
    """A Functional graph (residual Add, Concatenate with the input, LayerNorm) loads in safe mode."""
    L = keras.layers
    x = keras.Input((5,))
    h1 = L.Dense(8, activation="relu")(x)
    h = L.LayerNormalization()(L.Add()([h1, L.Dense(8)(h1)]))
    model = keras.Model(x, L.Dense(3, activation="softmax")(L.Concatenate()([x, h])))
    info = inspect_keras_model(model.to_json(), _summary(), "categorical_crossentropy")
    assert info["output_units"] == 3 and info["warnings"] == []
    assert info["layers"] == [
        "InputLayer",
        "Dense",
        "Dense",
        "Add",
        "LayerNormalization",
        "Concatenate",
        "Dense",
    ]
