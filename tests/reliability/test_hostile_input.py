"""Hostile input: fuzzed sweep specs, injection attempts, oversized and malformed bodies, CORS.

Whatever arrives, the answer is a clear 4xx (or a 2xx for what is valid),
never a 5xx, and nothing is stored for a rejected request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database
from service.core.repo.models import Sweep
from tests.conftest import TINY_LSTM, small_spec

# ---------------------------------------------------------------- fuzzed specs

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_junk = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(0),
    st.just(-1),
)
_dim = st.one_of(
    st.lists(_numbers, max_size=5),
    st.fixed_dictionaries(
        {"low": _numbers, "high": _numbers},
        optional={"log": st.booleans(), "num": _numbers, "steps": _numbers},
    ),
    _junk,
)
_workloads = st.one_of(
    st.just(TINY_LSTM),
    st.fixed_dictionaries(
        {"preset": st.sampled_from(["sensor_lstm", "least_squares", "pixel_color", "nope", "../etc/passwd"])},
        optional={
            "params": st.dictionaries(
                st.sampled_from(["n", "d", "units", "timesteps", "image_size", "x"]),
                _numbers | _junk,
                max_size=3,
            )
        },
    ),
    st.fixed_dictionaries({"id": _numbers}),
    st.fixed_dictionaries({"entry_point": st.text(max_size=20)}),
    _junk,
)
_specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=300) | _junk,
        "workload": _workloads,
        "epochs": _numbers | _junk,
        "seeds": _numbers | st.fixed_dictionaries({"init": _numbers, "data": _numbers}) | _junk,
        "space": st.dictionaries(
            st.sampled_from(
                [
                    "learning_rate",
                    "batch_size",
                    "beta_1",
                    "beta_2",
                    "optimizer",
                    "momentum",
                    "clipnorm",
                    "schedule",
                    "junk",
                ]
            ),
            _dim,
            max_size=4,
        )
        | _junk,
        "sampler": st.fixed_dictionaries(
            {"type": st.sampled_from(["grid", "random", "tpe", "qmc", "bogus"])},
            optional={"n_trials": _numbers, "seed": _numbers},
        )
        | _junk,
        "stability": st.dictionaries(st.text(max_size=20), _numbers, max_size=3) | _junk,
        "extra_field": _junk,
    },
)


def test_fuzzed_sweep_specs_never_cause_a_server_error(client: TestClient, db: Database) -> None:
    seen: set[int] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(spec=_specs)
    def check(spec: dict[str, Any]) -> None:
        body = json.dumps(spec, allow_nan=True)  # NaN/Infinity are what a hostile client would send
        resp = client.post("/v1/sweeps", content=body, headers={"Content-Type": "application/json"})
        seen.add(resp.status_code)
        assert resp.status_code == 201 or 400 <= resp.status_code < 500, (resp.status_code, resp.text, spec)
        if resp.status_code >= 400:
            detail = resp.json()["detail"]
            assert isinstance(detail, str) and detail

    check()
    assert seen - {201}, "the fuzzer never produced an invalid spec"
    # Don't leave a queue of fuzzed sweeps behind for whoever shares the database.
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Sweep)) is not None


# ---------------------------------------------------------------- injection


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE sweeps; --",
    '" OR 1=1 --',
    "%' UNION SELECT token_hash FROM api_tokens --",
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "\x00",
    "<script>alert(1)</script>",
    "A" * 5000,
    "😀" * 50,
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_in_query_parameters_is_harmless(client: TestClient, db: Database, value: str) -> None:
    created = client.post("/v1/sweeps", json=small_spec()).json()
    for path, params in [
        ("/v1/sweeps", {"q": value}),
        ("/v1/sweeps", {"workload": value}),
        ("/v1/sweeps", {"state": value}),
        ("/v1/sweeps", {"sort": value}),
        ("/v1/sweeps", {"limit": value}),
        (f"/v1/sweeps/{created['id']}/runs", {"run_class": value}),
        (f"/v1/sweeps/{created['id']}/runs", {"status": value}),
        (f"/v1/sweeps/{created['id']}/configs", {"param": value}),
        (f"/v1/sweeps/{created['id']}/regions", {"x": value, "y": "batch_size"}),
        (f"/v1/sweeps/{created['id']}/configs", {"sort": value}),
    ]:
        resp = client.get(path, params=params)
        assert resp.status_code < 500, (path, params, resp.status_code, resp.text)
        assert resp.status_code in (200, 404, 413, 422), (path, params, resp.status_code, resp.text)
    # A name filter that looks like SQL matches names literally, nothing more.
    assert client.get("/v1/sweeps", params={"q": "' OR '1'='1"}).json()["total"] == 0
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Sweep)) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sweeps/../../etc/passwd",
        "/v1/sweeps/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/v1/sweeps/1%20OR%201=1",
        "/v1/sweeps/-1",
        "/v1/sweeps/0",
        f"/v1/sweeps/{2**63}",
        f"/v1/sweeps/{2**70}",
        f"/v1/sweeps/{10**400}",
        "/v1/sweeps/1e9",
        "/v1/sweeps/NaN",
        f"/v1/runs/{2**64}/curve",
        f"/v1/sweeps/{2**62}/configs/{2**62}",
        f"/v1/sweeps/{2**62}/export.csv",
        f"/v1/sweeps/{2**62}/report",
        "/static/../../../../etc/passwd",
        "/v1/%00",
    ],
)
def test_path_injection_and_huge_ids_get_4xx(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text)
    assert "root:" not in resp.text


@pytest.mark.parametrize("method", ["post", "delete"])
def test_huge_ids_in_writes_get_4xx(client: TestClient, method: str) -> None:
    for sid in (2**31, 2**63, 2**70):
        path = f"/v1/sweeps/{sid}/cancel" if method == "post" else f"/v1/sweeps/{sid}"
        resp = getattr(client, method)(path)
        assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text)


# ---------------------------------------------------------------- bodies


def test_oversized_body_is_413_declared_or_streamed(db: Database, settings: Settings, token: str) -> None:
    small = settings.model_copy(update={"max_body_bytes": 4096})
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(small, db), headers=headers) as c:
        big = json.dumps(small_spec(name="x" * 10_000))
        resp = c.post("/v1/sweeps", content=big, headers={"Content-Type": "application/json"})
        assert resp.status_code == 413 and "4096" in resp.json()["detail"]

        def chunks() -> Any:  # no Content-Length: the limit must hold while reading
            for _ in range(10):
                yield b" " * 1000

        resp = c.post("/v1/sweeps", content=chunks(), headers={"Content-Type": "application/json"})
        assert resp.status_code == 413
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Sweep)) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"[]",
        b"null",
        b"123",
        b'{"name": "x", "workload": }',
        b"\xff\xfe\x00garbage",
        json.dumps({"name": "t", "workload": TINY_LSTM, "epochs": 1e400}).encode(),
    ],
)
def test_malformed_bodies_get_422(client: TestClient, body: bytes) -> None:
    resp = client.post("/v1/sweeps", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"]


def test_deeply_nested_json_is_400(client: TestClient) -> None:
    body = b'{"a": ' * 5000 + b"1" + b"}" * 5000  # the JSON parser's recursion limit
    resp = client.post("/v1/sweeps", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "parsing the body" in resp.json()["detail"]


def test_wrong_content_type_and_empty_body_are_4xx(client: TestClient) -> None:
    assert 400 <= client.post("/v1/sweeps").status_code < 500
    resp = client.post(
        "/v1/sweeps", content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert 400 <= resp.status_code < 500
    resp = client.post("/v1/sweeps", content=json.dumps(small_spec()), headers={"Content-Type": "text/plain"})
    assert 400 <= resp.status_code < 500


def test_bad_idempotency_key_header_is_4xx(client: TestClient) -> None:
    resp = client.post("/v1/sweeps", json=small_spec(), headers={"Idempotency-Key": "k" * 1000})
    assert resp.status_code == 422


# ---------------------------------------------------------------- access


def test_writes_need_a_valid_token(anon_client: TestClient, client: TestClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic YTpi"},
        {"Authorization": "Bearer"},
    ):
        resp = anon_client.post("/v1/sweeps", json=small_spec(), headers=headers)
        assert resp.status_code in (401, 403), (headers, resp.status_code)
    sid = client.post("/v1/sweeps", json=small_spec()).json()["id"]
    assert anon_client.post(f"/v1/sweeps/{sid}/cancel").status_code == 401
    assert anon_client.delete(f"/v1/sweeps/{sid}").status_code == 401
    assert anon_client.get(f"/v1/sweeps/{sid}").status_code == 200  # reads are public by default


def test_cors_closed_by_default_and_open_when_configured(db: Database, settings: Settings) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(settings, db)) as c:
        resp = c.get("/v1/sweeps", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in resp.headers
        resp = c.options("/v1/sweeps", headers=preflight)
        assert "access-control-allow-origin" not in resp.headers
    opened = settings.model_copy(update={"cors_origins": ["https://dash.example"]})
    with TestClient(create_app(opened, db)) as c:
        ok = c.get("/v1/sweeps", headers={"Origin": "https://dash.example"})
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        pre = c.options("/v1/sweeps", headers={**preflight, "Origin": "https://dash.example"})
        assert pre.status_code == 200 and "Authorization" in pre.headers["access-control-allow-headers"]
        evil = c.get("/v1/sweeps", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
