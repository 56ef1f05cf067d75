"""/v1/sweeps/{id}/configs: one record per configuration, its place in the queue and its seeds.

The seed aggregates themselves (Wilson intervals, class and success filters,
seed components) are checked in test_analysis_api.py on the same hand-built
sweep; here, what the configuration record adds and how the filters combine.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.db import Database
from tests.api.test_analysis_api import N_CONFIGS, SPEC, _finish_all, _outcome


@pytest.fixture
def finished(client: TestClient, db: Database) -> int:
    sid: int = client.post("/v1/sweeps", json=SPEC).json()["id"]
    assert _finish_all(db, _outcome) == N_CONFIGS
    return sid


def _items(client: TestClient, sid: int, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/v1/sweeps/{sid}/configs", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    items: list[dict[str, Any]] = body["items"]
    return items


def test_a_configuration_carries_its_queue_record_and_its_seeds(client: TestClient, finished: int) -> None:
    items = _items(client, finished)
    assert len(items) == N_CONFIGS
    assert [i["config_id"] for i in items] == sorted(i["config_id"] for i in items)
    assert sorted(i["trial_number"] for i in items) == list(range(N_CONFIGS))  # Optuna's numbering
    for i in items:
        assert i["sweep_id"] == finished and i["state"] == "completed" and i["error"] is None
        assert isinstance(i["trial_id"], int) and i["attempts"] == 0 and i["refine_round"] == 0
        assert i["worker_id"] == "hand-worker" and i["value"] == 1.0
        assert i["started_at"] and i["finished_at"]
        assert i["summary"]["n"] == 4


def test_queue_filters_and_outcome_filters_combine(client: TestClient, finished: int) -> None:
    # lr 0.01 at batch 4: an init seed diverges in each of its 4 configurations.
    both = _items(client, finished, param="learning_rate=0.01", run_class="diverged")
    assert {(i["params"]["learning_rate"], i["params"]["batch_size"]) for i in both} == {(0.01, 4)}
    assert len(both) == 4
    assert len(_items(client, finished, state="completed", min_success=1)) == 6
    assert _items(client, finished, state="waiting") == []
    assert len(_items(client, finished, param=["batch_size=16", "learning_rate=..0.01"])) == 8
    bad = client.get(f"/v1/sweeps/{finished}/configs", params={"state": "complete"})
    assert bad.status_code == 422 and "state" in bad.text


def test_an_unfinished_configuration_has_its_record_and_no_seed_summary(
    client: TestClient, db: Database
) -> None:
    sid = client.post("/v1/sweeps", json=SPEC).json()["id"]
    first = _items(client, sid)[0]
    r = client.get(f"/v1/sweeps/{sid}/configs/{first['config_id']}")
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["state"] == "waiting" and detail["trial_id"] is not None
    assert detail["summary"] is None and detail["by_init_seed"] == {} and detail["by_data_seed"] == {}
    other = client.post("/v1/sweeps", json=SPEC).json()["id"]
    assert client.get(f"/v1/sweeps/{other}/configs/{first['config_id']}").status_code == 404
