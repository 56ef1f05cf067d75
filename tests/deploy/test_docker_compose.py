"""docker-compose.yml is checked by reading it: no Docker engine runs here.

The same topology (PostgreSQL + API + several worker processes) runs for real
in tests/test_end_to_end.py; this file makes sure the compose file would
start it: services, commands that exist in our CLI, one database URL shared
by everything, health-gated start-up, a scalable worker and a GPU profile.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from service.cli import app
from service.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_services_and_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "api", "worker", "gpu-worker", "optuna-dashboard"}
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["gpu-worker"]["profiles"] == ["gpu"]
    gpu = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "gpu-worker", "optuna-dashboard"):
        assert services[name]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "pgdata" in compose["volumes"]


def test_everything_points_at_the_same_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = _env(services["postgres"])
    urls = {_env(services[n])["SWEEPS_DATABASE_URL"] for n in ("api", "worker", "gpu-worker")}
    urls.add(services["optuna-dashboard"]["command"][-1])
    assert len(urls) == 1
    url = make_url(urls.pop())
    assert url.host == "postgres" and url.username == pg["POSTGRES_USER"]
    assert url.password == pg["POSTGRES_PASSWORD"] and url.database == pg["POSTGRES_DB"]
    # the URL is one our settings accept
    Settings(database_url=url.render_as_string(hide_password=False))


def test_commands_are_real_cli_commands_with_real_options(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name in ("api", "worker", "gpu-worker"):
        command = compose["services"][name]["command"]
        assert command[0] == "sweeps"
        result = runner.invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{name}: {command} -> {result.output}"
    dashboard = compose["services"]["optuna-dashboard"]["command"]
    assert dashboard[0] == "optuna-dashboard"


def test_environment_keys_are_settings(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name in ("api", "worker", "gpu-worker"):
        for key in _env(compose["services"][name]):
            assert key.startswith("SWEEPS_"), key
            assert key.removeprefix("SWEEPS_").lower() in fields, f"{name}: {key} is not a setting"


def _dockerfile_stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions per stage (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_dockerfile_is_multi_stage_and_runs_as_a_numeric_non_root_user() -> None:
    stages = _dockerfile_stages()
    assert list(stages) == ["build", "runtime"]
    runtime = stages["runtime"]
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert not any(i.startswith("RUN pip") or "pip install" in i for i in runtime)  # installs happen in build
    user = [i for i in runtime if i.startswith("USER ")][-1].split()[1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes' runAsNonRoot can verify it
    assert runtime[-1].startswith("CMD ")


@pytest.mark.parametrize(("variant", "extras"), [("cpu", "dashboard"), ("gpu", "dashboard,gpu")])
def test_each_variant_installs_its_extras(variant: str, extras: str) -> None:
    """Run the build stage's install step with pip replaced by echo: the variant picks the extras."""
    import tomllib

    (install,) = [
        i for i in _dockerfile_stages()["build"] if 'pip install --no-cache-dir ".[${EXTRAS}]"' in i
    ]
    script = install.removeprefix("RUN ").replace("pip install", "echo")
    out = subprocess.run(["sh", "-c", script], env={"VARIANT": variant}, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["--no-cache-dir", f".[{extras}]"]
    bad = subprocess.run(["sh", "-c", script], env={"VARIANT": "tpu"}, capture_output=True, text=True)
    assert bad.returncode == 2
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(extras.split(",")) <= set(project["optional-dependencies"])
    assert project["scripts"]["sweeps"] == "service.cli:main"


def test_compose_builds_the_gpu_worker_from_the_gpu_variant(compose: dict[str, Any]) -> None:
    assert compose["services"]["gpu-worker"]["build"]["args"] == {"VARIANT": "gpu"}
    assert compose["services"]["worker"]["build"] == "."
