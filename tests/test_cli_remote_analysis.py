"""`sweeps report` and `sweeps regions` against the app in process (no server, no training)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service import cli, cli_remote
from tests.api.test_fluctuation_api import sweep_id  # noqa: F401  (fixture)


@pytest.fixture
def run_cli(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_remote, "_client", lambda server, token: client)
    monkeypatch.setattr(cli.console, "width", 200)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli.app, list(args))

    return invoke


def test_report_prints_the_markdown_diagnosis(run_cli: Any, sweep_id: int) -> None:  # noqa: F811
    out = run_cli("report", str(sweep_id))
    assert out.exit_code == 0, out.output
    assert "stable but noisy" in out.output and "## The three questions" in out.output
    as_json = run_cli("report", str(sweep_id), "--json")
    assert as_json.exit_code == 0 and '"answers"' in as_json.output


def test_regions_by_fluctuation_prints_the_map(run_cli: Any, sweep_id: int) -> None:  # noqa: F811
    out = run_cli("regions", str(sweep_id), "--metric", "fluctuation")
    assert out.exit_code == 0, out.output
    assert "fluctuation by learning_rate and batch_size" in out.output
    assert "0.4" in out.output  # batch 2 at lr 1e-3: 0.4 x (1 +- jitter), median 0.4
    success = run_cli("regions", str(sweep_id))
    assert "100% (4/4)" in success.output
    bad = run_cli("regions", str(sweep_id), "--metric", "wobble")
    assert bad.exit_code != 0 and "fluctuation" in bad.output
