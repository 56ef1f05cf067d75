"""Schemathesis over the whole OpenAPI spec against the live app: no 5xx, responses match the schema.

The app runs on a real SQLite file seeded with a sweep, so that ids in paths
sometimes hit real rows. Examples per operation are bounded to keep the run
short; CI can raise ``SWEEPS_SCHEMATHESIS_EXAMPLES`` (read here, in a test,
never by the service).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.core import tokens
from service.core.db import Database
from service.core.migrate import upgrade
from service.core.sweeps import create_sweep, parse_spec
from tests.conftest import make_settings, small_spec

EXAMPLES = int(os.environ.get("SWEEPS_SCHEMATHESIS_EXAMPLES", "15"))
_TOKEN: dict[str, str] = {}
_DIR = tempfile.mkdtemp(prefix="sweeps-schemathesis-")


def _live_app() -> FastAPI:
    """Built at import: schemathesis needs the schema when pytest collects (its from_fixture
    loader does not work with this pytest). A real SQLite file in a temp dir, seeded with a sweep."""
    url = f"sqlite:///{Path(_DIR) / 'sweeps.db'}"
    upgrade(url)
    # Limits low enough that generated specs hit them (413s) without queueing huge grids.
    cfg = make_settings(url, max_configs=50, max_runs=200, max_seeds=8, max_epochs=50, max_body_bytes=65_536)
    db = Database(url)
    with db.transaction() as s:
        _, _TOKEN["secret"] = tokens.create_token(s, name="schemathesis")
    create_sweep(db, cfg, parse_spec(small_spec()))
    return create_app(cfg, db)


APP = _live_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_and_never_5xx(case: schemathesis.Case) -> None:
    headers = {"Authorization": f"Bearer {_TOKEN['secret']}"}
    case.call_and_validate(
        headers=headers,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.response_schema_conformance,
            schemathesis.checks.content_type_conformance,
            schemathesis.checks.status_code_conformance,
        ],
    )


def test_schema_covers_every_route() -> None:
    """The spec lists every /v1 route, so schemathesis above sees the whole API."""
    paths = set(APP.openapi()["paths"])
    assert {"/v1/sweeps", "/v1/sweeps/{sweep_id}", "/v1/workers", "/healthz", "/readyz", "/metrics"} <= paths
