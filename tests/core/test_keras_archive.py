"""A .keras archive is checked before it is opened: every refusal, and both kinds of real file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from service.core.errors import InvalidSpec, LimitExceeded
from service.core.keras_archive import check_archive, load_with_weights, read_archive

LIMIT = 10_000_000


def _model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.RMSprop(rho=0.8), loss="binary_crossentropy")
    return model


def keras_file(tmp_path: Path, model: keras.Model | None = None) -> bytes:
    path = tmp_path / "m.keras"
    (model or _model()).save(path)
    return path.read_bytes()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_saved_with_weights(tmp_path: Path) -> None:
    model = _model()
    archive = read_archive(keras_file(tmp_path, model), max_bytes=LIMIT)
    assert archive.weights is not None
    assert archive.compile_config is not None and archive.compile_config["optimizer"]["config"]["rho"] == 0.8
    loaded, _ = load_with_weights(archive.model_json, archive.weights)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_saved_without_weights(tmp_path: Path) -> None:
    with_weights = keras_file(tmp_path)
    with zipfile.ZipFile(io.BytesIO(with_weights)) as zf:
        members = {n: zf.read(n) for n in ("config.json", "metadata.json")}
    archive = read_archive(_zip(members), max_bytes=LIMIT)
    assert archive.weights is None and archive.compile_config is not None


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../config.json": b"{}"}, "path traversal"),
        ({"/etc/config.json": b"{}"}, "absolute path"),
        ({"config.json": b"{}", "evil.py": b"print(1)"}, "'evil.py' is not part of a .keras file"),
        ({"metadata.json": b"{}"}, "has no config.json"),
        ({"config.json": b"[1]"}, "not a Keras model config"),
        ({"config.json": b"{nope"}, "is not JSON"),
        (
            {"config.json": b"{}", "metadata.json": b"{}", "model.weights.h5": b"x", "assets/a": b"x"},
            "has 4 members",
        ),
        ({"config.json": b"{}", "model.weights.h5": bytes(5_000_000)}, "zip bomb"),
    ],
)
def test_archive_refusals(members: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        read_archive(_zip(members), max_bytes=LIMIT)


def test_size_limits_before_opening() -> None:
    with pytest.raises(LimitExceeded, match="upload limit of 100 bytes"):
        check_archive(_zip({"config.json": b"{}" * 100}, zipfile.ZIP_STORED), max_bytes=100)
    # The declared unpacked size counts too: a small archive that unpacks past the limit.
    with pytest.raises(LimitExceeded, match="declares 3000 bytes unpacked"):
        check_archive(_zip({"config.json": b"{}", "model.weights.h5": b"0" * 3000}), max_bytes=2000)
    with pytest.raises(InvalidSpec, match="not a .keras archive"):
        check_archive(b"\x89HDF\r\n\x1a\n", max_bytes=LIMIT)
    with pytest.raises(InvalidSpec, match="cannot be read"):
        check_archive(b"PK\x03\x04 truncated", max_bytes=LIMIT)


def test_a_lambda_layer_inside_the_archive_is_refused(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(1)])
    data = keras_file(tmp_path, model)
    archive = read_archive(data, max_bytes=LIMIT)  # the archive itself is well formed
    with pytest.raises(InvalidSpec, match="Lambda layer"):
        load_with_weights(archive.model_json, archive.weights)


def test_weights_that_do_not_fit_the_model_are_refused(tmp_path: Path) -> None:
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(7), keras.layers.Dense(1)])
    with zipfile.ZipFile(io.BytesIO(keras_file(tmp_path))) as zf:
        config = zf.read("config.json")
    (tmp_path / "other").mkdir()
    with zipfile.ZipFile(io.BytesIO(keras_file(tmp_path / "other", other))) as zf:
        wrong = zf.read("model.weights.h5")
    archive = read_archive(_zip({"config.json": config, "model.weights.h5": wrong}), max_bytes=LIMIT)
    with pytest.raises(InvalidSpec, match="weights do not load into its model"):
        load_with_weights(archive.model_json, archive.weights)
