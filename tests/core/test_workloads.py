"""The preset catalogue: importable without TensorFlow, validated params."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.core.errors import InvalidSpec, NotFound
from service.core.workloads import PRESETS, resolve_preset_params


def test_catalogue_does_not_import_tensorflow() -> None:
    code = (
        "import sys, service.core.workloads; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_presets_describe_themselves() -> None:
    assert set(PRESETS) == {"sensor_lstm", "cos_arccos", "sequence_rnn", "pixel_color", "least_squares"}
    for info in PRESETS.values():
        assert info.description and "data_seed" in info.params
        assert set(info.param_docs) == set(info.params)
        assert info.default_params["optimizer"] in ("adam", "rmsprop", "sgd")
    assert PRESETS["sensor_lstm"].default_params == {
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "rho": 0.9,
        "batch_size": 32,
    }
    assert PRESETS["sequence_rnn"].default_params["beta_1"] == 0.5


def test_resolve_merges_and_normalises() -> None:
    p = resolve_preset_params("pixel_color", {"image_size": 224, "dropout": 0})
    assert p["image_size"] == 224 and p["dropout"] == 0.0 and p["n_train_per_class"] == 1500
    assert resolve_preset_params("sensor_lstm", {"n_train": 12.0})["n_train"] == 12


@pytest.mark.parametrize(
    ("name", "params", "error", "message"),
    [
        ("nope", {}, NotFound, "available presets: cos_arccos"),
        ("sensor_lstm", {"units": 0}, InvalidSpec, "outside [1, 4096]"),
        ("sensor_lstm", {"units": 2.5}, InvalidSpec, "must be an integer"),
        ("sensor_lstm", {"units": "32"}, InvalidSpec, "not a number"),
        ("sensor_lstm", {"n_train": 3}, InvalidSpec, "outside [6, 100000]"),
        ("sequence_rnn", {"cell": "transformer"}, InvalidSpec, "simple_rnn, gru, lstm"),
        ("least_squares", {"n": 4, "d": 8}, InvalidSpec, "must be >= d"),
        ("least_squares", {"lambda_max": float("nan")}, InvalidSpec, "not finite"),
        ("pixel_color", {"imagesize": 8}, InvalidSpec, "valid parameters: image_size"),
    ],
)
def test_bad_params(name: str, params: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as err:
        resolve_preset_params(name, params)
    assert message in str(err.value)
