"""Every error in one shape with a stable code: a body that is not JSON says where and what was
expected, an id that cannot exist is a 404, a 405 lists every documented method."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.api.errors import ERROR_CODES, error_codes_markdown


def _error(r: object, status: int, code: str) -> str:
    from httpx import Response

    assert isinstance(r, Response)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and code in ERROR_CODES and ERROR_CODES[code][0] == status, body
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def test_malformed_json_gives_line_column_and_what_was_expected(client: TestClient) -> None:
    body = b'{"name": "x",\n  "epochs": }'
    r = client.post("/v1/sweeps", content=body, headers={"Content-Type": "application/json"})
    assert _error(r, 422, "invalid_json") == "the body is not valid JSON: line 2, column 13: expected value"
    r = client.post("/v1/sweeps", content=b"{'name': 1}", headers={"Content-Type": "application/json"})
    assert "line 1, column 2: expected property name" in _error(r, 422, "invalid_json")


IMPOSSIBLE = [
    "/v1/sweeps/0",
    f"/v1/sweeps/{2**63}",
    f"/v1/runs/{10**30}/curve",
    f"/v1/datasets/{2**64}",
    "/v1/sweeps/1/configs/99999999999999999999",
]


@pytest.mark.parametrize("path", IMPOSSIBLE)
def test_ids_that_cannot_exist_are_404_not_422(client: TestClient, path: str) -> None:
    assert "SQLite" not in _error(client.get(path), 404, "not_found")


def test_405_allow_header_lists_every_documented_method(client: TestClient) -> None:
    r = client.request("OPTIONS", "/v1/datasets")
    _error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, POST"
    r = client.put("/v1/sweeps/1")
    assert r.headers["allow"] == "DELETE, GET, HEAD"


def test_unknown_path_and_validation_use_their_codes(client: TestClient, anon_client: TestClient) -> None:
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.get("/v1/sweeps/1"), 404, "not_found")
    _error(client.get("/v1/sweeps?limit=0"), 422, "invalid_request")
    _error(client.get("/v1/sweeps/1/configs?param=learning_rate"), 422, "invalid_request")
    _error(anon_client.post("/v1/sweeps", json={}), 401, "unauthorized")


def test_error_codes_are_in_the_openapi_document_and_a_readme_table(client: TestClient) -> None:
    error_out = client.get("/openapi.json").json()["components"]["schemas"]["ErrorOut"]
    assert error_out["properties"]["error"]["enum"] == list(ERROR_CODES)
    table = error_codes_markdown()
    assert all(f"| `{code}` | {status} |" in table for code, (status, _) in ERROR_CODES.items())
    assert table in error_out["description"]


def test_pages_keep_their_html_404_for_impossible_ids(client: TestClient) -> None:
    r = client.get("/sweeps/0")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
