"""The `sweeps` CLI against a live `sweeps serve` (API + a local worker) on SQLite."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import small_spec
from tests.helpers import ROOT, free_port, live_server, processes_with, stop, wait_for, worker_env

pytestmark = pytest.mark.slow


def _sweeps(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with live_server(tmp_path, workers=1) as live:
        yield live


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`sweeps serve` with no local worker: sweeps stay queued."""
    with live_server(tmp_path, workers=0) as live:
        yield live


def test_token_submit_watch_status_export(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    created = _sweeps("token", "create", "cli-test", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("sws_")

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        yaml.safe_dump(small_spec(name="cli-sweep", space={"learning_rate": [1e-2, 1e-1], "batch_size": [4]}))
    )
    without = _sweeps("submit", str(spec_file), "--server", base, env=env)
    assert without.returncode == 2 and "token" in without.stderr

    done = _sweeps(
        "submit", str(spec_file), "--server", base, "--token", token, "--watch", env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep 1 completed" in done.stdout

    status = _sweeps("status", "--server", base, env=env)
    assert status.returncode == 0 and "cli-sweep" in status.stdout and "completed" in status.stdout

    out = tmp_path / "runs.csv"
    exported = _sweeps("export", "1", "-o", str(out), "--server", base, env=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and {r["run_class"] for r in rows} <= {
        "diverged",
        "rises_after_min",
        "stuck_at_chance",
        "noisy",
        "slow",
        "converged",
    }


def test_bad_spec_file_names_the_field(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(small_spec(space={"learnig_rate": [0.1]})))
    token = _sweeps("token", "create", "t", env=env).stdout.strip().splitlines()[-1]
    r = _sweeps("submit", str(bad), "--server", base, "--token", token, env=env)
    assert r.returncode == 2 and "learnig_rate" in r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    r = _sweeps("submit", str(broken), "--server", base, "--token", token, env=env)
    assert r.returncode == 2 and "not valid YAML" in r.stderr


def _one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    """A failed command: exit 2, nothing on stdout, one line on stderr and no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    return lines[0]


def test_server_down_prints_the_url_tried_and_how_to_start_it(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = worker_env(f"sqlite:///{tmp_path / 'none.db'}", COLUMNS="80")
    for args in (["status"], ["status", "3"], ["export", "3", "-o", str(tmp_path / "x.csv")]):
        line = _one_error_line(_sweeps(*args, "--server", base, env=env))
        assert base in line and "sweeps serve" in line, line


def test_api_errors_print_the_apis_message_and_tables_keep_long_names(
    api_only: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = api_only
    env = {**env, "COLUMNS": "80"}
    token = _sweeps("token", "create", "t", env=env).stdout.strip().splitlines()[-1]
    name = "learning-rate-by-batch-size-on-the-cos-arccos-toy-with-three-seeds-and-eight-epochs"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(name=name)))

    line = _one_error_line(_sweeps("submit", str(spec), "--server", base, env=env))  # no token
    assert line.startswith("error: 401 unauthorized: ") and "sweeps token create" in line, line
    line = _one_error_line(_sweeps("status", "999", "--server", base, env=env))
    assert line.startswith("error: 404 not_found: ") and "999" in line, line
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(small_spec(epochs=0)))
    line = _one_error_line(_sweeps("submit", str(bad), "--server", base, "--token", token, env=env))
    assert line.startswith("error: 422 ") and "epochs" in line, line

    assert _sweeps("submit", str(spec), "--server", base, "--token", token, env=env).returncode == 0
    table = _sweeps("status", "--server", base, env=env)
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout and max(len(x) for x in table.stdout.splitlines()) <= 80
    rows = [row.split("│") for row in table.stdout.splitlines() if row.count("│") > 2]
    folded = "".join(cells[2].strip() for cells in rows)
    assert name in folded, table.stdout


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_to_serve_stops_its_local_workers(tmp_path: Path) -> None:
    port = free_port()
    env = worker_env(f"sqlite:///{tmp_path / 'serve.db'}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: len(processes_with(parent=proc.pid)) == 2, 60, "two local workers")
        wait_for(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                if _port_open(port)
                else False
            ),
            60,
            "the API",
        )
        workers = processes_with(parent=proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
        wait_for(lambda: not any(_alive(w) for w in workers), 30, "the workers to exit with the server")
    finally:
        stop([proc])


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
