"""The response models describe the analysis' JSON without changing it.

Each analysis and dashboard endpoint answers through a pydantic model (so the
OpenAPI document describes it); here every answer is compared, key for key and
type for type, with what the route's own function returns before the model
sees it. A key the model drops, adds, renames or converts (an int turned float,
a missing key turned null) fails the test.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from starlette.requests import Request

from service.api.routes import analysis, dashboard
from service.core.db import Database
from service.core.errors import InvalidSpec
from tests.api.test_analysis_api import SPEC, _finish_all, _outcome


def _request(path: str, params: dict[str, Any], accept: str = "application/json") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": urlencode(params).encode(),
            "headers": [(b"accept", accept.encode())],
        }
    )


def _same(got: Any, want: Any, where: str = "$") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (where, sorted(got), sorted(want))
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


def _check(client: TestClient, path: str, raw: Any, **params: Any) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    _same(r.json(), json.loads(json.dumps(jsonable_encoder(raw))))


def _check_all(client: TestClient, db: Database, sid: int, config_id: int) -> None:
    base = f"/v1/sweeps/{sid}"
    slices: list[dict[str, Any]] = [
        {},
        {"beta_1": "0.5"},
        {"x": "beta_1", "y": "beta_2", "learning_rate": "0.01", "batch_size": "16"},
    ]
    for params in slices:
        x, y = params.get("x", "learning_rate"), params.get("y", "batch_size")
        try:
            raw = analysis.regions(sid, _request(f"{base}/regions", params), db, None, x=x, y=y)
        except InvalidSpec:  # part-way, the slice may not have finished runs yet
            assert client.get(f"{base}/regions", params=params).status_code == 422
            continue
        _check(client, f"{base}/regions", raw, **params)
        raw = dashboard.heatmap(sid, _request(f"{base}/heatmap", params), db, None, x=x, y=y)
        _check(client, f"{base}/heatmap", raw, **params)
    _check(client, f"{base}/edge", analysis.edge(sid, db, None))
    _check(client, f"{base}/report", analysis.report(sid, _request(f"{base}/report", {}), db, None))
    _check(client, f"{base}/progress", dashboard.progress(sid, db, None))
    _check(client, f"{base}/plots", dashboard.sweep_plots(sid, db, None))
    band = dashboard.config_band(sid, config_id, db, None, max_points=3)
    _check(client, f"{base}/configs/{config_id}/band", band, max_points=3)


@pytest.mark.parametrize("finished", [0, 7, None])
def test_typed_answers_are_the_analysis_unchanged(
    client: TestClient, db: Database, finished: int | None
) -> None:
    """Before any seed finished (keys the analysis leaves out), part-way, and finished."""
    sid = client.post("/v1/sweeps", json=SPEC).json()["id"]
    if finished != 0:
        _finish_all(db, _outcome, limit=finished)
    config_id = client.get(f"/v1/sweeps/{sid}/configs", params={"limit": 1}).json()["items"][0]["config_id"]
    _check_all(client, db, sid, config_id)
