"""Schemathesis over the whole OpenAPI spec against the live app.

The app runs on a real SQLite file seeded with a finished, a running and a
queued sweep (tests/reliability/seeded.py), so that ids in paths hit real rows.
Two runs: the pytest integration with four checks (no 5xx, responses match the
schema), and the schemathesis command line as an outside tester runs it, with
every check and every phase (coverage, fuzzing, stateful through the
document's links) against uvicorn, configured by schemathesis.toml beside this
file. Examples per operation are bounded to keep the runs short; CI can raise
``SWEEPS_SCHEMATHESIS_EXAMPLES`` (read here, in a test, never by the service).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.core import tokens
from service.core.db import Database
from service.core.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import LiveServer
from tests.reliability.seeded import seed

EXAMPLES = int(os.environ.get("SWEEPS_SCHEMATHESIS_EXAMPLES", "15"))
_TOKEN: dict[str, str] = {}
_DIR = tempfile.mkdtemp(prefix="sweeps-schemathesis-")


def _live_app(name: str = "sweeps") -> FastAPI:
    """Built at import: schemathesis needs the schema when pytest collects (its from_fixture
    loader does not work with this pytest). A real SQLite file in a temp dir, seeded with sweeps;
    its token in ``_TOKEN[name]``."""
    url = f"sqlite:///{Path(_DIR) / f'{name}.db'}"
    upgrade(url)
    # Limits low enough that generated specs hit them (413s) without queueing huge grids.
    cfg = make_settings(url, max_configs=50, max_runs=200, max_seeds=8, max_epochs=50, max_body_bytes=65_536)
    db = Database(url)
    with db.transaction() as s:
        _, _TOKEN[name] = tokens.create_token(s, name="schemathesis")
    seed(db, cfg)
    return create_app(cfg, db)


APP = _live_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_and_never_5xx(case: schemathesis.Case) -> None:
    headers = {"Authorization": f"Bearer {_TOKEN['sweeps']}"}
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


CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_cli_every_check_every_phase_finds_nothing() -> None:
    """`schemathesis run --checks all` with coverage, fuzzing and stateful phases: zero failures.

    The command and its summary lines are printed for the CI log (run pytest with -s to see them)."""
    exe = Path(sys.executable).with_name("schemathesis")
    # A database of its own: the run above deletes and cancels the seeded sweeps (path ids have
    # the example 1), and this run must start from real finished, running and queued sweeps.
    with LiveServer(_live_app("cli")) as live:
        cmd = [
            str(exe),
            "--config-file",
            str(CONFIG),
            "run",
            f"{live.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            os.environ.get("SWEEPS_SCHEMATHESIS_EXAMPLES", "12"),
            "-H",
            f"Authorization: Bearer {_TOKEN['cli']}",
            "--no-color",
        ]
        # cwd: schemathesis keeps a cache folder where it runs.
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, cwd=_DIR
        )
    out = done.stdout + done.stderr
    lines = out.splitlines()
    summary = [line for line in lines if re.match(r"^=+ .* in [0-9.]+s =+$", line)]
    shown = r"^\s*(\d+ generated, |⚠️|\S+\s+(Examples|Coverage|Fuzzing|Stateful) \(|API Links:)"
    cases = [line.strip() for line in lines if re.match(shown, line)]
    print(" ".join(cmd[:-3] + ["-H", "'Authorization: Bearer <token>'", "--no-color"]))
    print(*(cases + summary[-1:]) or [out[-3000:]], sep="\n")
    assert done.returncode == 0, out[-6000:]
    assert "Test cases:" in out and "failures" not in (summary[-1] if summary else "failures"), out[-6000:]
