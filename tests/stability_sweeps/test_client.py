"""Client against the real API (no workers: sweeps stay queued): numpy arrays and Keras model
objects in, the API's records out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import keras
import pytest

import stability_sweeps
from stability_sweeps import ApiError, Client, Dataset, Sweep
from tests.conftest import TINY_LSTM, small_spec
from tests.stability_sweeps.conftest import tiny_data, tiny_model


def test_upload_dataset_from_numpy(api: Client) -> None:
    x, y = tiny_data()
    ds = api.upload_dataset(x, y, x[:4], y[:4], name="tiny")
    assert isinstance(ds, Dataset) and ds.id >= 1 and ds.name == "tiny"
    assert ds.summary["n_train"] == 12 and ds.summary["n_val"] == 4 and ds.summary["input_shape"] == [4]
    assert ds.summary["num_classes"] == 3


def test_workload_from_an_uncompiled_model_takes_the_labels_loss(api: Client) -> None:
    ds = api.upload_dataset(*tiny_data())
    wl = api.create_workload(tiny_model(compiled=False), ds)
    assert wl.name == "tiny_mlp" and wl.info["dataset_id"] == ds.id
    assert wl.info["loss"] == "sparse_categorical_crossentropy" and wl.sweep_ref == {"id": wl.id}


def test_workload_from_a_compiled_model_keeps_its_optimizer_and_loss(api: Client) -> None:
    ds = api.upload_dataset(*tiny_data())
    wl = api.create_workload(tiny_model(), ds.id, name="mine")
    assert wl.name == "mine" and wl.info["loss"] == "sparse_categorical_crossentropy"
    compiled = json.dumps(wl.info["compile"]).lower()
    assert "rmsprop" in compiled and "0.8" in compiled, wl.info["compile"]  # the rho it was compiled with
    assert wl.info["has_weights"] is False


def test_workload_from_a_keras_file_with_weights(api: Client, tmp_path: Path) -> None:
    ds = api.upload_dataset(*tiny_data())
    wl = api.create_workload(tiny_model(), ds, with_weights=True)
    assert wl.name == "tiny_mlp" and wl.info["has_weights"] is True
    saved = tmp_path / "saved.keras"
    tiny_model().save(saved)
    from_path = api.create_workload(saved, ds)
    assert from_path.name == "saved" and from_path.info["has_weights"] is True


def test_a_refused_model_is_an_api_error(api: Client) -> None:
    ds = api.upload_dataset(*tiny_data())
    wrong_input = keras.Sequential([keras.Input((7,)), keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ApiError) as caught:
        api.create_workload(wrong_input, ds)  # the data has 4 features
    assert caught.value.status == 422 and caught.value.code == "invalid_upload", caught.value


def test_submit_a_dict_or_a_yaml_file_then_read_back_and_cancel(api: Client, tmp_path: Path) -> None:
    sweep = api.submit(small_spec(name="from-dict"))
    assert isinstance(sweep, Sweep) and sweep.state == "queued" and sweep.name == "from-dict"
    assert sweep.url == f"{api.url}/sweeps/{sweep.id}" and repr(sweep).startswith(f"<Sweep {sweep.id} ")

    spec_file = tmp_path / "spec.yaml"
    # YAML 1.1 would read 1e-3 as a string; the spec reader takes it as the number people mean.
    spec_file.write_text(
        "name: from-yaml\n"
        f"workload: {json.dumps(TINY_LSTM)}\n"
        "epochs: 2\nseeds: 2\n"
        "space: {learning_rate: [1e-3, 1e-2], batch_size: [4]}\n"
    )
    queued = api.submit(spec_file)
    assert queued.info["n_configs"] == 2 and queued.info["runs_total"] == 4
    configs = queued.configs()
    assert len(configs) == 2 and {c["params"]["learning_rate"] for c in configs} == {1e-3, 1e-2}
    assert {c["state"] for c in configs} == {"waiting"}
    assert queued.runs() == []  # runs are created as workers claim configurations

    assert queued.cancel().state == "cancelled"
    assert queued.wait(progress=False, timeout_s=10).state == "cancelled"
    assert api.get_sweep(queued.id).state == "cancelled"


def test_wait_gives_up_after_its_timeout(api: Client) -> None:
    sweep = api.submit(small_spec())
    with pytest.raises(TimeoutError, match=rf"sweep {sweep.id} is still queued after 0.3 s"):
        sweep.wait(progress=False, poll_s=0.1, timeout_s=0.3)


def test_spec_file_that_does_not_exist(api: Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no sweep spec at"):
        api.submit(tmp_path / "missing.yaml")


def test_every_path_the_client_calls_is_in_the_openapi_document(live_api: str) -> None:
    """The OpenAPI document is the contract: the client calls only the operations it describes."""
    source = "".join(p.read_text() for p in Path(stability_sweeps.__file__).parent.glob("*.py"))
    called = {re.sub(r"\{[^}]+\}", "{}", p) for p in re.findall(r'"(/(?:v1/[^"?]*|readyz))"', source)}
    documented = {
        re.sub(r"\{[^}]+\}", "{}", p) for p in httpx.get(f"{live_api}/openapi.json").json()["paths"]
    }
    assert len(called) >= 12 and called <= documented, sorted(called - documented)
