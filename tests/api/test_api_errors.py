"""service/api/errors.py: every error leaves the app in one JSON shape, over real HTTP.

A small app with the handlers installed and routes that raise each kind of
error; the real app's own errors are checked by each resource's tests."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from service.api import errors
from service.core.errors import LimitExceeded, NotFound, Unauthorized


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("sweep 9 does not exist", extra={"sweep_id": 9})

    @app.get("/limited")
    def limited() -> None:
        raise LimitExceeded("too many configurations")

    @app.get("/secret")
    def secret() -> None:
        raise Unauthorized("an API token is needed")

    @app.post("/things")
    def things(body: Body, count: int = Query(ge=1)) -> dict[str, int]:
        return {"size": body.size, "count": count}

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout", headers={"X-Pot": "1"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("the secret internals")

    return app


@pytest.fixture
def http() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_domain_errors_keep_their_status_code_and_extras(http: TestClient) -> None:
    r = http.get("/missing")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "sweep 9 does not exist", "sweep_id": 9}
    assert "www-authenticate" not in r.headers
    r = http.get("/limited")
    assert (r.status_code, r.json()["error"]) == (413, "limit_exceeded")
    r = http.get("/secret")
    assert (r.status_code, r.json()["error"], r.headers["www-authenticate"]) == (
        401,
        "unauthorized",
        "Bearer",
    )


def test_validation_errors_name_each_field(http: TestClient) -> None:
    r = http.post("/things", params={"count": 0}, json={"name": "x", "size": "big", "colour": "red"})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"count", "size", "colour"}  # "body"/"query" are left out of the location
    assert fields["colour"] == "unknown field; remove it or check its spelling"
    assert body["detail"] == "; ".join(f"{e['field']}: {e['message']}" for e in body["errors"])
    r = http.post(
        "/things", params={"count": 1}, content=b"not json", headers={"content-type": "application/json"}
    )
    # A body that is not JSON has its own code, with the line and column of the fault.
    assert r.status_code == 422 and r.json()["error"] == "invalid_json"
    assert "line 1, column 1" in r.json()["detail"]


def test_http_errors_keep_status_and_headers(http: TestClient) -> None:
    r = http.get("/teapot")
    assert r.status_code == 418 and r.headers["x-pot"] == "1"
    # A status without a code of its own is a client error of the generic kind.
    assert r.json() == {"error": "bad_request", "detail": "short and stout"}
    r = http.get("/no-such-route")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "Not Found"}
    r = http.delete("/missing")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_anything_else_is_a_plain_500_and_a_logged_traceback(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="service.api.errors"):
        r = http.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": "internal",
        "detail": "internal server error; the server log has the details",
    }
    assert "the secret internals" not in r.text
    (record,) = [x for x in caplog.records if x.name == "service.api.errors"]
    assert record.getMessage() == "unhandled error on GET /boom" and record.exc_info is not None


def test_common_responses_document_the_error_shape() -> None:
    assert set(errors.COMMON_RESPONSES) == {400, 401, 413, 422, 503}
    assert all(v["model"] is errors.ErrorOut for v in errors.COMMON_RESPONSES.values())
    assert errors._loc(("body", "spec", 0, "name")) == "spec.0.name"
    assert errors._loc(("body",)) == "body"
