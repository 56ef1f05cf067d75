"""The ``sweeps`` command line, run where the database is: serve, worker, migrate, wait-for-migrations, token.

The commands that talk to a running server over HTTP (submit, status, export, report, regions)
are in ``service.cli_remote``; both print through ``service.cli_output``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from service import cli_remote
from service.cli_output import console, fail, folding_table
from service.core.config import Settings
from service.core.spec_yaml import load_spec_yaml

app = typer.Typer(help="Stability Sweeps: where is training stable?", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (stored hashed; the secret is shown once)")
app.add_typer(token_app, name="token")

DbUrl = Annotated[str | None, typer.Option("--database-url", help="overrides SWEEPS_DATABASE_URL")]


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def _logging(settings: Settings) -> None:
    from service.core.logs import setup_logging

    setup_logging(settings.log_level, json_lines=settings.log_json)


@app.command()
def migrate(database_url: DbUrl = None) -> None:
    """Create or upgrade the database schema (ours and Optuna's)."""
    from service.core.migrate import head_revision, upgrade

    s = _settings(database_url)
    upgrade(s.database_url)
    console.print(f"schema at {head_revision(s.database_url)} on {_redact(s.database_url)}")


@app.command("wait-for-migrations")
def wait_for_migrations(
    database_url: DbUrl = None,
    timeout: Annotated[float, typer.Option(help="give up (exit 2) after this many seconds")] = 600.0,
) -> None:
    """Wait until the schema is current (for pods that start while `sweeps migrate` runs elsewhere)."""
    from service.core.db import make_engine
    from service.core.migrate import wait_until_current

    s = _settings(database_url)
    engine = make_engine(s.database_url)
    try:
        if not wait_until_current(engine, s.database_url, timeout_s=timeout):
            fail(f"the schema of {_redact(s.database_url)} is not current after {timeout:g} s")
    finally:
        engine.dispose()
    console.print(f"schema is current on {_redact(s.database_url)}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def worker(
    database_url: DbUrl = None,
    device: Annotated[str | None, typer.Option(help="cpu, gpu, gpu:N or auto")] = None,
    threads: Annotated[int, typer.Option(help="TensorFlow threads for this process")] = 1,
    max_idle: Annotated[float | None, typer.Option(help="exit after this many idle seconds")] = None,
) -> None:
    """Run one worker process: claim configurations and train them."""
    s = _settings(database_url)
    _logging(s)
    from workers.main import run_worker

    run_worker(s, device=device, threads=threads, max_idle_s=max_idle)


def _spawn_workers(n: int, database_url: str, device: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "SWEEPS_DATABASE_URL": database_url}
    cmd = [sys.executable, "-m", "service.cli", "worker", "--device", device]
    return [subprocess.Popen(cmd, env=env) for _ in range(n)]


@app.command()
def serve(
    database_url: DbUrl = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int | None, typer.Option(help="local worker processes (SWEEPS_WORKERS)")] = None,
    device: Annotated[str | None, typer.Option(help="device for local workers")] = None,
    demo: Annotated[bool, typer.Option(help="submit the demo sweep (examples/demo.yaml) at start")] = False,
    open_writes: Annotated[bool, typer.Option(help="accept writes without a token (local use only)")] = False,
    optuna_dashboard_port: Annotated[
        int | None, typer.Option(help="also start optuna-dashboard on this port, on the same database")
    ] = None,
) -> None:
    """API + dashboards + a pool of local workers, on SQLite by default."""
    import uvicorn

    overrides: dict[str, Any] = {"workers": workers, "device": device}
    if open_writes:
        overrides["require_token_for_writes"] = False
    if optuna_dashboard_port:
        overrides["optuna_dashboard_url"] = f"http://{host}:{optuna_dashboard_port}"
    s = _settings(database_url, **overrides)
    _logging(s)
    from service.api.app import create_app
    from service.api.heap import freeze_startup_objects
    from service.core.migrate import upgrade

    upgrade(s.database_url)
    procs = _spawn_workers(s.workers, s.database_url, s.device)
    if optuna_dashboard_port:
        procs.append(_spawn_optuna_dashboard(s.database_url, host, optuna_dashboard_port))
    console.print(f"{s.workers} local workers on {s.device}; dashboards and API at http://{host}:{port}")
    if demo:
        _submit_demo(s)
    # uvicorn re-raises the SIGTERM/SIGINT it caught once it has shut down; with
    # the default handler that kills this process before `finally` can stop the
    # local workers, leaving them orphaned. Turn the re-raised signal into SystemExit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)
    try:
        api = create_app(s)
        freeze_startup_objects()  # full GC collections then skip start-up's objects (api/heap.py)
        # log_config=None: uvicorn keeps our redacting handler instead of installing its own.
        uvicorn.run(api, host=host, port=port, log_level=s.log_level.lower(), log_config=None)
    finally:
        _stop_children(procs)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM lets each worker finish its epoch and release its trial; kill stragglers."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def _spawn_optuna_dashboard(database_url: str, host: str, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("optuna-dashboard")
    if not exe.exists():
        fail("optuna-dashboard is not installed; pip install 'stability-sweeps[dashboard]'")
    console.print(f"optuna-dashboard at http://{host}:{port} on the same database")
    return subprocess.Popen([str(exe), "--host", host, "--port", str(port), database_url])


def _demo_spec_path() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"


def _submit_demo(s: Settings) -> None:
    from service.core import tokens
    from service.core.db import Database
    from service.core.sweeps import create_sweep, parse_spec

    db = Database(s.database_url)
    spec = parse_spec(load_spec_yaml(_demo_spec_path().read_text()))
    record, _ = create_sweep(db, s, spec, idempotency_key=f"demo-{spec.name}")
    with db.transaction() as session:
        _, secret = tokens.create_token(session, name="demo")
    console.print(
        f"demo sweep {record.id} queued: {record.n_configs} configurations x {record.n_seeds} seeds; "
        f"follow it at /sweeps/{record.id}"
    )
    console.print("to submit your own sweeps from another shell:")
    print(f"  export SWEEPS_TOKEN={secret}\n  .venv/bin/sweeps submit examples/sensor_lstm.yaml --watch")


@token_app.command("create")
def token_create(name: str, database_url: DbUrl = None) -> None:
    """Create a token; its secret is printed once and stored only as a hash."""
    from service.core import tokens
    from service.core.db import Database

    db = Database(_settings(database_url).database_url)
    with db.transaction() as s:
        record, secret = tokens.create_token(s, name=name)
    console.print(f"token {record.id} '{record.name}' (shown once, keep it safe):")
    print(secret)


@token_app.command("list")
def token_list(database_url: DbUrl = None) -> None:
    from service.core.db import Database
    from service.core.repo import tokens as tokens_repo

    with Database(_settings(database_url).database_url).transaction() as s:
        rows = tokens_repo.list_tokens(s)
    table = folding_table("id", "name", "created", "revoked")
    for t in rows:
        table.add_row(
            str(t.id), t.name, t.created_at.isoformat(), t.revoked_at.isoformat() if t.revoked_at else ""
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int, database_url: DbUrl = None) -> None:
    from service.core.db import Database
    from service.core.errors import NotFound
    from service.core.repo import tokens as tokens_repo

    try:
        with Database(_settings(database_url).database_url).transaction() as s:
            tokens_repo.revoke_token(s, token_id=token_id)
    except NotFound as exc:
        fail(exc.detail)
    console.print(f"token {token_id} revoked")


cli_remote.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
