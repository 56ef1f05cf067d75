"""Who may read and write: bearer tokens for the API, the page cookie for the dashboard only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.deps import COOKIE
from service.core.config import Settings
from service.core.db import Database
from tests.conftest import small_spec


@pytest.fixture
def private(settings: Settings, db: Database) -> Iterator[TestClient]:
    """A server whose reads need a token; the client sends none unless told."""
    closed = settings.model_copy(update={"read_access": "token"})
    with TestClient(create_app(closed, db), follow_redirects=False) as c:
        yield c


@pytest.fixture
def sweep_id(client: TestClient) -> int:
    sid: int = client.post("/v1/sweeps", json=small_spec()).json()["id"]
    return sid


def test_api_reads_need_the_bearer_header_not_the_cookie(
    private: TestClient, token: str, sweep_id: int
) -> None:
    assert private.get(f"/v1/sweeps/{sweep_id}").status_code == 401
    good = {"Authorization": f"Bearer {token}"}
    assert private.get(f"/v1/sweeps/{sweep_id}", headers=good).status_code == 200
    bad = {"Authorization": f"Bearer {token}x"}
    assert private.get(f"/v1/sweeps/{sweep_id}", headers=bad).status_code == 401
    private.cookies.set(COOKIE, token)
    assert private.get(f"/v1/sweeps/{sweep_id}").status_code == 401


def test_dashboard_json_accepts_the_cookie(private: TestClient, token: str, sweep_id: int) -> None:
    url = f"/v1/sweeps/{sweep_id}/progress"
    assert private.get(url).status_code == 401
    assert private.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    private.cookies.set(COOKIE, token)
    assert private.get(url).status_code == 200


def test_a_page_trades_the_token_in_its_address_for_a_cookie(
    private: TestClient, token: str, sweep_id: int
) -> None:
    page = f"/sweeps/{sweep_id}"
    refused = private.get(page)
    assert refused.status_code == 401 and "?token=" in refused.text
    assert private.get(page, params={"token": "not-a-token"}).status_code == 401
    signed_in = private.get(page, params={"token": token, "cpage": 1})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == f"{page}?cpage=1"  # the secret leaves the address
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={token}") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    private.cookies.set(COOKIE, token)
    assert private.get(page).status_code == 200


def test_writes_never_accept_the_cookie(private: TestClient, token: str) -> None:
    private.cookies.set(COOKIE, token)
    assert private.post("/v1/sweeps", json=small_spec()).status_code == 401
    good = {"Authorization": f"Bearer {token}"}
    assert private.post("/v1/sweeps", json=small_spec(), headers=good).status_code == 201


def test_open_reads_need_no_token(anon_client: TestClient, sweep_id: int) -> None:
    assert anon_client.get(f"/v1/sweeps/{sweep_id}").status_code == 200
    assert anon_client.get(f"/sweeps/{sweep_id}").status_code == 200
    assert anon_client.get(f"/v1/sweeps/{sweep_id}/progress").status_code == 200
