"""Uploaded workloads keep the user's compile settings, over real HTTP: compile_config, .keras files
(with and without weights), and every refusal of the upload and of a sweep on it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

N_TRAIN = 24


def _dataset(client: TestClient, *, binary: bool = False) -> int:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    y = np.arange(N_TRAIN) % (2 if binary else 3)
    np.savez(buf, x_train=rng.normal(size=(N_TRAIN, 6)).astype(np.float32), y_train=y)
    r = client.post("/v1/datasets", files={"file": ("d.npz", buf.getvalue(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _model(optimizer: object = "adam", loss: str = "sparse_categorical_crossentropy") -> keras.Model:
    binary = loss == "binary_crossentropy"
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1 if binary else 3, activation="sigmoid" if binary else "softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])  # type: ignore[arg-type]
    return model


def _keras_bytes(tmp_path: Path, model: keras.Model, *, weights: bool = True) -> bytes:
    path = tmp_path / "m.keras"
    model.save(path)
    data = path.read_bytes()
    if weights:
        return data
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for name in ("config.json", "metadata.json"):
            dst.writestr(name, src.read(name))
    return buf.getvalue()


def _upload_keras(client: TestClient, data: bytes, dataset_id: int | str) -> object:
    return client.post(
        "/v1/workloads/keras",
        files={"file": ("m.keras", data, "application/octet-stream")},
        data={"dataset_id": str(dataset_id), "name": "m"},
    )


def _spec(workload_id: int, **extra: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": "s",
        "workload": {"id": workload_id},
        "epochs": 1,
        "seeds": 1,
        "space": {"learning_rate": [0.01]},
    }
    spec.update(extra)
    return spec


def test_compile_config_becomes_the_workloads_defaults(client: TestClient) -> None:
    ds = _dataset(client)
    model = _model(keras.optimizers.RMSprop(learning_rate=3e-3, rho=0.8, clipnorm=1.0))
    body = {
        "name": "rms",
        "dataset_id": ds,
        "model": model.to_json(),
        "compile_config": model.get_compile_config(),
    }
    r = client.post("/v1/workloads", json=body)
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["compile"]["params"] == {
        "optimizer": "rmsprop",
        "learning_rate": 3e-3,
        "rho": 0.8,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "clipnorm": 1.0,
    }
    assert w["compile"]["loss"] == "sparse_categorical_crossentropy" and w["metrics"] == ["accuracy"]
    assert w["task"] == "multiclass" and w["has_weights"] is False
    # rho belongs to RMSprop: a space without an optimizer may sweep it; beta_1 it may not.
    assert client.post("/v1/sweeps", json=_spec(w["id"], space={"rho": [0.5, 0.9]})).status_code == 201
    r = client.post("/v1/sweeps", json=_spec(w["id"], space={"beta_1": [0.5, 0.9]}))
    assert r.status_code == 422 and "compiled optimizer rmsprop, which has no beta_1" in r.json()["detail"]


def test_sgd_without_beta_1_and_explicit_loss_names(client: TestClient) -> None:
    ds = _dataset(client, binary=True)
    model = _model("sgd", loss="binary_crossentropy")
    body = {
        "name": "b",
        "dataset_id": ds,
        "model": model.to_json(),
        "compile_config": model.get_compile_config(),
    }
    w = client.post("/v1/workloads", json=body).json()
    assert w["task"] == "binary" and w["loss"] == "binary_crossentropy"
    r = client.post("/v1/sweeps", json=_spec(w["id"], space={"beta_1": [0.9]}))
    assert r.status_code == 422 and "sgd, which has no beta_1" in r.json()["detail"]
    # Naming the optimizer in the space makes beta_1 meaningful again.
    ok = client.post("/v1/sweeps", json=_spec(w["id"], space={"optimizer": ["adam"], "beta_1": [0.9]}))
    assert ok.status_code == 201, ok.text


def test_batch_size_larger_than_the_training_set(client: TestClient) -> None:
    ds = _dataset(client)
    w = client.post("/v1/workloads", json={"name": "m", "dataset_id": ds, "model": _model().to_json()}).json()
    r = client.post("/v1/sweeps", json=_spec(w["id"], space={"batch_size": [8, 500]}))
    assert r.status_code == 422 and f"which has {N_TRAIN} examples" in r.json()["detail"]
    r = client.post("/v1/sweeps", json=_spec(w["id"], space={"batch_size": [8, N_TRAIN]}))
    assert r.status_code == 201, r.text
    preset = {**_spec(1, space={"batch_size": [500]}), "workload": {"preset": "sensor_lstm", "params": {}}}
    r = client.post("/v1/sweeps", json=preset)
    assert r.status_code == 422 and "which has 98 examples" in r.json()["detail"]


def test_keras_file_with_and_without_weights(client: TestClient, tmp_path: Path) -> None:
    ds = _dataset(client)
    model = _model(keras.optimizers.RMSprop(rho=0.8))
    r = _upload_keras(client, _keras_bytes(tmp_path, model), ds)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    with_weights = r.json()  # type: ignore[attr-defined]
    assert with_weights["has_weights"] is True and with_weights["compile"]["params"]["rho"] == 0.8
    assert r.headers["Location"] == f"/v1/workloads/{with_weights['id']}"  # type: ignore[attr-defined]
    saved = client.post("/v1/sweeps", json=_spec(with_weights["id"], init="saved"))
    assert saved.status_code == 201, saved.text
    r = _upload_keras(client, _keras_bytes(tmp_path, model, weights=False), ds)
    without = r.json()  # type: ignore[attr-defined]
    assert without["has_weights"] is False and without["compile"]["params"]["optimizer"] == "rmsprop"
    r2 = client.post("/v1/sweeps", json=_spec(without["id"], init="saved"))
    assert r2.status_code == 422 and "init: saved needs saved weights" in r2.json()["detail"]
    r3 = client.post(
        "/v1/sweeps", json={**_spec(1), "workload": {"preset": "cos_arccos", "params": {}}, "init": "saved"}
    )
    assert r3.status_code == 422 and "has none" in r3.json()["detail"]


def test_keras_upload_refusals(client: TestClient, tmp_path: Path) -> None:
    ds = _dataset(client)
    good = _keras_bytes(tmp_path, _model())
    cases: list[tuple[object, int, str]] = [
        (_upload_keras(client, b"not a zip at all", ds), 422, "not a .keras archive"),
        (_upload_keras(client, good, "abc"), 422, "dataset_id 'abc' is not a dataset id"),
        (_upload_keras(client, good, 999), 404, "dataset 999"),
        (_upload_keras(client, b"", ds), 422, "empty"),
        (client.post("/v1/workloads/keras", json={"dataset_id": ds}), 422, "multipart/form-data"),
        (
            client.post("/v1/workloads/keras", data={"dataset_id": str(ds)}, files={"x": ("a", b"1")}),
            422,
            "no file",
        ),
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("../../etc/cron.d/x", "boom")
    cases.append((_upload_keras(client, buf.getvalue(), ds), 422, "path traversal"))
    lam = keras.Sequential([keras.Input((6,)), keras.layers.Lambda(lambda t: t), keras.layers.Dense(3)])
    cases.append((_upload_keras(client, _keras_bytes(tmp_path, lam), ds), 422, "Lambda layer"))
    for r, status, message in cases:
        assert r.status_code == status, r.text  # type: ignore[attr-defined]
        assert message in r.json()["detail"]  # type: ignore[attr-defined]
    assert client.get("/v1/workloads").json()["workloads"]["total"] == 0


@pytest.mark.parametrize(
    ("compile_config", "message"),
    [
        ({"optimizer": {"class_name": "Adagrad", "config": {}}}, "'Adagrad' is not supported"),
        ({"optimizer": {"class_name": "RMSprop", "config": {"centered": True}}}, "centered=True"),
        ({"optimizer": "adam", "loss": "ctc"}, "not a built-in Keras loss the sweep can train with"),
        ({"optimizer": "adam", "loss_weights": [1.0]}, "loss_weights is not supported"),
    ],
)
def test_compile_config_refusals(client: TestClient, compile_config: dict, message: str) -> None:  # type: ignore[type-arg]
    ds = _dataset(client)
    body = {"name": "x", "dataset_id": ds, "model": _model().to_json(), "compile_config": compile_config}
    r = client.post("/v1/workloads", json=body)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_the_keras_upload_path_is_post_only(client: TestClient) -> None:
    r = client.get("/v1/workloads/keras")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert client.get("/v1/workloads/12345").status_code == 404  # an id is still a workload id


def test_difference_products_are_refused_for_a_model_whose_gradient_jumps(client: TestClient) -> None:
    """A ReLU model with `products: difference` is a 422 naming the layer; exact products, or a
    smooth model, are accepted; the presets answer the same from their table."""
    ds = _dataset(client)
    relu = client.post(
        "/v1/workloads", json={"name": "m", "dataset_id": ds, "model": _model().to_json()}
    ).json()
    difference = {"every": 1, "products": "difference"}
    r = client.post("/v1/sweeps", json=_spec(relu["id"], record_sharpness=difference))
    assert r.status_code == 422 and "Dense(activation='relu')" in r.json()["detail"], r.text
    assert "products: exact" in r.json()["detail"]
    r = client.post("/v1/sweeps", json=_spec(relu["id"], record_sharpness={"every": 1}))
    assert r.status_code == 201, r.text
    smooth = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    )
    tanh = client.post(
        "/v1/workloads", json={"name": "t", "dataset_id": ds, "model": smooth.to_json()}
    ).json()
    r = client.post("/v1/sweeps", json=_spec(tanh["id"], record_sharpness=difference))
    assert r.status_code == 201, r.text
    for preset, status in (("pixel_color", 422), ("sensor_lstm", 201)):
        spec = {**_spec(1, record_sharpness=difference), "workload": {"preset": preset, "params": {}}}
        assert client.post("/v1/sweeps", json=spec).status_code == status, preset
