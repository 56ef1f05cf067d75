"""What the client sends: the .npz built in memory, the compile configuration, the .keras archive."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stability_sweeps.payloads import compile_config, keras_archive, npz_bytes
from tests.stability_sweeps.conftest import tiny_data, tiny_model


def test_npz_holds_the_arrays_under_the_names_the_api_reads() -> None:
    x, y = tiny_data()
    with np.load(io.BytesIO(npz_bytes(x, y, x[:3], y[:3]))) as npz:
        assert sorted(npz.files) == ["x_train", "x_val", "y_train", "y_val"]
        np.testing.assert_array_equal(npz["x_train"], x)
        np.testing.assert_array_equal(npz["y_val"], y[:3])
    with np.load(io.BytesIO(npz_bytes(x.tolist(), y.tolist()))) as npz:
        assert sorted(npz.files) == ["x_train", "y_train"] and npz["x_train"].shape == (12, 4)


def test_validation_needs_both_arrays() -> None:
    x, y = tiny_data()
    with pytest.raises(ValueError, match="both x_val and y_val"):
        npz_bytes(x, y, x_val=x)


def test_compile_config_is_the_models_as_json() -> None:
    config = compile_config(tiny_model())
    assert config is not None
    assert config["optimizer"]["class_name"] == "RMSprop" and config["optimizer"]["config"]["rho"] == 0.8
    assert config["loss"] == "sparse_categorical_crossentropy" and config["metrics"] == ["accuracy"]
    assert json.loads(json.dumps(config)) == config
    assert compile_config(tiny_model(compiled=False)) is None


def test_keras_archive_from_the_model_or_a_path(tmp_path: Path) -> None:
    name, data = keras_archive(tiny_model())
    assert name == "tiny_mlp.keras"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {"config.json", "model.weights.h5"} <= set(archive.namelist())
    saved = tmp_path / "mine.keras"
    saved.write_bytes(data)
    assert keras_archive(saved) == ("mine.keras", data)
    with pytest.raises(ValueError, match=r"not a \.keras file"):
        keras_archive(tmp_path / "model.h5")
