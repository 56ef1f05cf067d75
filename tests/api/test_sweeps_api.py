"""The sweeps API over HTTP: create, list, get with progress, cancel, delete, errors."""

from __future__ import annotations

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from service.core.config import Settings
from tests.conftest import small_spec


def test_create_enqueues_every_configuration_as_a_waiting_trial(
    client: TestClient, settings: Settings
) -> None:
    r = client.post("/v1/sweeps", json=small_spec())
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert sweep["n_configs"] == 6 and sweep["n_seeds"] == 2 and sweep["runs_total"] == 12
    assert sweep["progress"] == {
        "waiting": 6,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 6,
    }
    assert r.headers["location"] == f"/v1/sweeps/{sweep['id']}"
    study = optuna.load_study(study_name=sweep["study_name"], storage=settings.database_url)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and all(t.state == TrialState.WAITING for t in trials)
    lrs = sorted({t.params["learning_rate"] for t in trials})
    assert lrs == pytest.approx([1e-3, 1e-2, 1e-1])
    # the workload parameters were filled in with the preset's defaults
    assert sweep["spec"]["workload"]["params"]["units"] == 4
    assert "noise" in sweep["spec"]["workload"]["params"]

    trials_page = client.get(f"/v1/sweeps/{sweep['id']}/configs", params={"param": "batch_size=12"}).json()
    assert trials_page["total"] == 3
    ranged = client.get(
        f"/v1/sweeps/{sweep['id']}/configs", params={"param": ["learning_rate=5e-3..", "batch_size=4"]}
    ).json()
    assert [t["params"]["learning_rate"] for t in ranged["items"]] == pytest.approx([1e-2, 1e-1])


def test_list_is_paginated_and_filtered(client: TestClient) -> None:
    ids = [client.post("/v1/sweeps", json=small_spec(name=f"s{i}")).json()["id"] for i in range(3)]
    page = client.get("/v1/sweeps", params={"limit": 2}).json()
    assert page["total"] == 3 and [s["id"] for s in page["items"]] == ids[::-1][:2]
    page2 = client.get("/v1/sweeps", params={"limit": 2, "offset": 2}).json()
    assert [s["id"] for s in page2["items"]] == [ids[0]]
    assert client.get("/v1/sweeps", params={"q": "s1"}).json()["total"] == 1


def test_cancel_and_delete(client: TestClient, settings: Settings) -> None:
    sweep = client.post("/v1/sweeps", json=small_spec()).json()
    r = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled" and r.json()["progress"]["cancelled"] == 6
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 409
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"/v1/sweeps/{sweep['id']}").status_code == 404
    with pytest.raises(KeyError):
        optuna.load_study(study_name=sweep["study_name"], storage=settings.database_url)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"space": {"learnig_rate": [0.1]}}, "space.learnig_rate"),
        ({"space": {"batch_size": [0]}}, "space"),
        ({"seeds": 0}, "seeds"),
        ({"sampler": {"type": "random"}}, "sampler"),
        ({"colour": "red"}, "colour"),
        ({"workload": {"preset": "sensor_lstm", "params": {"unitz": 3}}}, "unitz"),
        ({"workload": {"preset": "no_such_preset"}}, "no_such_preset"),
        ({"stability": {"not_a_threshold": 1.0}}, "not_a_threshold"),
    ],
)
def test_bad_specs_get_an_error_naming_the_field(
    client: TestClient, patch: dict[str, object], field: str
) -> None:
    r = client.post("/v1/sweeps", json=small_spec(**patch))
    assert r.status_code in (404, 422), r.text
    assert field in r.json()["detail"]
    assert client.get("/v1/sweeps").json()["total"] == 0  # nothing half-created


def test_limits_are_clear_4xx(settings: Settings, db, token: str) -> None:  # type: ignore[no-untyped-def]
    from service.api.app import create_app

    tight = settings.model_copy(update={"max_configs": 5, "max_epochs": 2})
    with TestClient(create_app(tight, db), headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post("/v1/sweeps", json=small_spec(epochs=2))
        assert r.status_code == 413 and "SWEEPS_MAX_CONFIGS" in r.json()["detail"]
        r = c.post("/v1/sweeps", json=small_spec(space={"learning_rate": [0.1]}))
        assert r.status_code == 413 and "epochs" in r.json()["detail"]


def test_writes_need_a_token_reads_do_not(anon_client: TestClient) -> None:
    r = anon_client.post("/v1/sweeps", json=small_spec())
    assert r.status_code == 401 and "token" in r.json()["detail"]
    assert anon_client.get("/v1/sweeps").status_code == 200
    bad = anon_client.post("/v1/sweeps", json=small_spec(), headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/v1/sweeps/999").status_code == 404
    assert client.get("/v1/runs/999").status_code == 404
    assert client.get("/v1/sweeps/999/runs").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ok"
