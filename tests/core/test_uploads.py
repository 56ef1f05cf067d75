"""Upload validation: every acceptance and rejection path of the npz and model checks."""

from __future__ import annotations

import io
import json
from typing import Any

import keras
import numpy as np
import pytest

from service.core.errors import InvalidSpec
from service.core.uploads import DatasetSummary, inspect_keras_model, inspect_npz, safe_model_from_json


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y_INT = np.arange(20) % 3
Y_HOT = np.eye(3, dtype=np.float32)[Y_INT]


def _dense_json(inputs: int = 5, units: int = 3, activation: str = "softmax") -> str:
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    return str(model.to_json())


def test_good_npz_with_validation() -> None:
    s = inspect_npz(_npz(x_train=X, y_train=Y_HOT, x_val=X[:4], y_val=Y_HOT[:4]))
    assert (s.n_train, s.n_val, s.input_shape, s.num_classes, s.label_format) == (20, 4, (5,), 3, "one_hot")
    assert s.class_counts == [7, 7, 6] and s.suggested_loss == "categorical_crossentropy"


def test_label_formats() -> None:
    assert inspect_npz(_npz(x_train=X, y_train=Y_INT)).label_format == "integer"
    as_float = inspect_npz(_npz(x_train=X, y_train=Y_INT.astype(np.float32)[:, None]))
    assert (as_float.label_format, as_float.num_classes) == ("integer", 3)
    reg = inspect_npz(_npz(x_train=X, y_train=RNG.normal(size=20)))
    assert (reg.label_format, reg.num_classes, reg.class_counts) == ("regression", 0, None)
    forced = inspect_npz(_npz(x_train=X, y_train=Y_INT), task="regression")
    assert forced.label_format == "regression"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip file at all", "not an npz archive"),
        (_npz(x_train=X), "lacks y_train"),
        (_npz(x_train=X, y_train=Y_INT, x_val=X), "x_val and y_val together"),
        (_npz(x_train=X, y_train=Y_INT, extra=X), "unexpected arrays extra"),
        (_npz(x_train=X, y_train=Y_INT[:19]), "20 examples but y_train has 19"),
        (_npz(x_train=X, y_train=Y_INT, x_val=X[:3, :4], y_val=Y_INT[:3]), "x_val examples have shape"),
        (_npz(x_train=np.array(["a", "b"]), y_train=np.array([0, 1])), "numeric"),
        (_npz(x_train=np.where(X > 2, np.nan, X), y_train=Y_INT), "NaN or infinite"),
        (_npz(x_train=X, y_train=Y_INT - 1), "negative labels"),
        (_npz(x_train=X, y_train=Y_HOT * 2), "not one-hot"),
        (_npz(x_train=X, y_train=np.zeros(20, dtype=int)), "at least 2 classes"),
        (_npz(x_train=X[:, 0], y_train=Y_INT), "(n, features...)"),
        (_npz(x_train=X, y_train=Y_INT.astype(float) + 0.5), None),  # fine: regression
    ],
)
def test_bad_npz_is_rejected(data: bytes, message: str | None) -> None:
    if message is None:
        assert inspect_npz(data).label_format == "regression"
        return
    with pytest.raises(InvalidSpec) as err:
        inspect_npz(data)
    assert message in err.value.detail


def test_pickled_and_npy_uploads_are_refused() -> None:
    buf = io.BytesIO()
    np.save(buf, X)
    with pytest.raises(InvalidSpec, match="single .npy"):
        inspect_npz(buf.getvalue())
    with pytest.raises(InvalidSpec, match="without pickle"):
        inspect_npz(_npz(x_train=np.array([{"a": 1}, {"b": 2}], dtype=object), y_train=np.array([0, 1])))


def _summary(label_format: str = "one_hot", num_classes: int = 3) -> DatasetSummary:
    return DatasetSummary(20, 0, (5,), label_format, num_classes, "float32")  # type: ignore[arg-type]


def test_good_model() -> None:
    info = inspect_keras_model(_dense_json(), _summary(), "categorical_crossentropy")
    assert info["output_units"] == 3 and info["input_shape"] == [5] and info["layers"] == ["Dense", "Dense"]
    assert info["num_params"] == 5 * 8 + 8 + 8 * 3 + 3 and info["warnings"] == []
    more = inspect_keras_model(
        _dense_json(units=4), _summary("integer", 3), "sparse_categorical_crossentropy"
    )
    assert "4 outputs for 3 classes" in more["warnings"][0]


def test_lambda_layer_is_refused() -> None:
    model = keras.Sequential([keras.Input((5,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(3)])
    with pytest.raises(InvalidSpec, match="Lambda layer"):
        inspect_keras_model(model.to_json(), _summary(), "categorical_crossentropy")


def test_unknown_layer_and_custom_module_are_refused() -> None:
    cfg = json.loads(_dense_json())
    cfg["config"]["layers"][1]["class_name"] = "SuperDense"
    with pytest.raises(InvalidSpec, match="safe mode"):
        safe_model_from_json(json.dumps(cfg))
    cfg = json.loads(_dense_json())
    cfg["config"]["layers"][1]["module"] = "my_team.layers"
    with pytest.raises(InvalidSpec, match="my_team.layers"):
        safe_model_from_json(json.dumps(cfg))
    cfg = json.loads(_dense_json())
    cfg["config"]["layers"][1]["registered_name"] = "my_team>SuperDense"
    with pytest.raises(InvalidSpec, match="custom object"):
        safe_model_from_json(json.dumps(cfg))
    with pytest.raises(InvalidSpec, match="not valid JSON"):
        safe_model_from_json("{nope")


def test_fixed_seeds_are_removed() -> None:
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=42)),
        ]
    )
    _, warnings = safe_model_from_json(model.to_json())
    assert any("fixed seed 42" in w for w in warnings)


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
        (_dense_json(), _summary(), "sparse_categorical_crossentropy", "use 'categorical_crossentropy'"),
        (_dense_json(), _summary(), "hinge", "not supported"),
    ],
)
def test_model_dataset_mismatches(model_json: str, summary: DatasetSummary, loss: str, message: str) -> None:
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
