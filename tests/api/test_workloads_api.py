"""GET/POST /v1/workloads over real HTTP: presets, uploaded Keras-JSON workloads, rejections."""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.core.workloads import PRESETS


def _npz(n: int = 24, features: int = 6, classes: int = 3) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.normal(size=(n, features)).astype(np.float32), y_train=np.arange(n) % classes)
    return buf.getvalue()


def _dataset(client: TestClient) -> int:
    r = client.post("/v1/datasets", files={"file": ("d.npz", _npz(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _model(features: int = 6, units: int = 3, lambda_layer: bool = False) -> str:
    inp = keras.Input((features,))
    h = keras.layers.Dense(8, activation="relu")(inp)
    if lambda_layer:
        h = keras.layers.Lambda(lambda t: t * 2)(h)
    out = keras.layers.Dense(units, activation="softmax")(h)
    return str(keras.Model(inp, out).to_json())


def test_catalogue_lists_presets_with_params(client: TestClient) -> None:
    body = client.get("/v1/workloads").json()
    names = {p["name"] for p in body["presets"]}
    assert {"sensor_lstm", "cos_arccos", "sequence_rnn", "pixel_color"} <= names
    pixel = next(p for p in body["presets"] if p["name"] == "pixel_color")
    assert pixel["params"] == PRESETS["pixel_color"].params
    assert "image_size" in pixel["param_docs"] and pixel["default_params"]["optimizer"] == "adam"
    assert pixel["sweep_ref"] == {"preset": "pixel_color", "params": {}}
    assert body["workloads"]["total"] == 0 and isinstance(body["entry_points"], list)
    assert client.get("/v1/workloads/presets/sensor_lstm").json()["report"] == "1"
    assert client.get("/v1/workloads/presets/nope").status_code == 404


def test_create_get_and_list_uploaded_workload(client: TestClient) -> None:
    ds = _dataset(client)
    r = client.post("/v1/workloads", json={"name": "mlp", "dataset_id": ds, "model": _model()})
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["loss"] == "sparse_categorical_crossentropy"  # from the integer labels
    assert w["metrics"] == ["accuracy"] and w["sweep_ref"] == {"id": w["id"]}
    assert w["summary"]["output_units"] == 3 and w["summary"]["layers"][-1] == "Dense"
    assert r.headers["Location"] == f"/v1/workloads/{w['id']}"
    assert client.get(f"/v1/workloads/{w['id']}").json()["name"] == "mlp"
    assert client.get("/v1/workloads").json()["workloads"]["items"][0]["id"] == w["id"]
    # The parsed JSON object is accepted as well as the string.
    r2 = client.post("/v1/workloads", json={"name": "obj", "dataset_id": ds, "model": json.loads(_model())})
    assert r2.status_code == 201, r2.text
    # And a sweep can reference it.
    spec = {
        "name": "s",
        "workload": {"id": w["id"]},
        "epochs": 1,
        "seeds": 1,
        "space": {"learning_rate": [0.01]},
    }
    assert client.post("/v1/sweeps", json=spec).status_code == 201


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        (lambda: _model(lambda_layer=True), {}, "Lambda layer"),
        (
            lambda: _model().replace('"class_name": "Dense"', '"class_name": "NoSuchLayer"', 1),
            {},
            "could not be loaded in safe mode",
        ),
        (
            lambda: _model().replace('"module": "keras.layers"', '"module": "evil_pkg.layers"', 1),
            {},
            "only built-in Keras objects",
        ),
        (lambda: _model(features=7), {}, "expects inputs of shape"),
        (lambda: _model(units=2), {}, "labels go up to 2"),
        (lambda: "{not json", {}, "not valid JSON"),
        (lambda: _model(), {"loss": "categorical_crossentropy"}, "does not fit integer labels"),
        (lambda: _model(), {"metrics": ["f1_magic"]}, "metric 'f1_magic' is not supported"),
    ],
    ids=[
        "lambda",
        "unknown_layer",
        "foreign_module",
        "input_shape",
        "too_few_outputs",
        "bad_json",
        "loss",
        "metric",
    ],
)
def test_rejections(client: TestClient, model, extra, message: str) -> None:  # type: ignore[no-untyped-def]
    ds = _dataset(client)
    r = client.post("/v1/workloads", json={"name": "bad", "dataset_id": ds, "model": model(), **extra})
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert client.get("/v1/workloads").json()["workloads"]["total"] == 0


def test_unknown_dataset_and_workload(client: TestClient) -> None:
    r = client.post("/v1/workloads", json={"name": "x", "dataset_id": 12345, "model": _model()})
    assert r.status_code == 404 and "dataset 12345" in r.json()["detail"]
    assert client.get("/v1/workloads/777").status_code == 404
    spec = {"name": "s", "workload": {"id": 777}, "epochs": 1, "seeds": 1, "space": {"learning_rate": [0.01]}}
    r = client.post("/v1/sweeps", json=spec)
    assert r.status_code == 404 and "POST /v1/workloads" in r.json()["detail"]


def test_create_needs_a_token(anon_client: TestClient) -> None:
    r = anon_client.post("/v1/workloads", json={"name": "x", "dataset_id": 1, "model": "{}"})
    assert r.status_code == 401
