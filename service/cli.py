"""The ``sweeps`` command line: serve, worker, submit, status, migrate, wait-for-migrations, token, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.core.config import Settings
from service.core.spec_yaml import load_spec_yaml
from service.core.states import ACTIVE_SWEEP_STATES, SweepState

app = typer.Typer(help="Stability Sweeps: where is training stable?", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (stored hashed; the secret is shown once)")
app.add_typer(token_app, name="token")
console = Console()
# soft_wrap: an error is one line, however narrow the terminal (scripts grep it).
err = Console(stderr=True, soft_wrap=True)

DbUrl = Annotated[str | None, typer.Option("--database-url", help="overrides SWEEPS_DATABASE_URL")]
Server = Annotated[str, typer.Option("--server", envvar="SWEEPS_SERVER", help="API base URL")]
Token = Annotated[str | None, typer.Option("--token", envvar="SWEEPS_TOKEN", help="API token for writes")]


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def _logging(settings: Settings) -> None:
    from service.core.logs import setup_logging

    setup_logging(settings.log_level, json_lines=settings.log_json)


def _fail(message: str) -> NoReturn:
    # escape: the message quotes user input and the API's text, which may hold [brackets].
    err.print(f"[red]error:[/red] {escape(' '.join(message.split()))}")
    raise typer.Exit(2)


def _table(*headers: str) -> Table:
    """A table whose cells wrap rather than end in an ellipsis: on a narrow terminal a sweep's name
    is folded over lines, never cut (names and free-text columns get the spare width first)."""
    table = Table()
    for h in headers:
        table.add_column(h, overflow="fold", min_width=16 if h == "name" else None)
    return table


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
            _fail(f"the schema of {_redact(s.database_url)} is not current after {timeout:g} s")
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
        # log_config=None: uvicorn keeps our redacting handler instead of installing its own.
        uvicorn.run(create_app(s), host=host, port=port, log_level=s.log_level.lower(), log_config=None)
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
        _fail("optuna-dashboard is not installed; pip install 'stability-sweeps[dashboard]'")
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


def _load_spec_file(path: Path) -> Any:
    if not path.exists():
        _fail(f"{path} does not exist")
    text = path.read_text()
    try:
        return json.loads(text) if path.suffix == ".json" else load_spec_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        _fail(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}")


class _PoliteTransport(httpx.BaseTransport):
    """Turns "cannot connect" and timeouts into one line that names the URL tried and says how to
    start the server, instead of httpx's traceback."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except httpx.TimeoutException:
            _fail(f"the API at {self.server} did not answer {request.method} {request.url.path} in time")
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach the API at {self.server} ({type(exc).__name__}: {exc}); start it with "
                "`sweeps serve` (or point --server / SWEEPS_SERVER at a running one)"
            )

    def close(self) -> None:
        self.inner.close()


def _client(server: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server, headers=headers, timeout=30, transport=_PoliteTransport(server))


def _check(resp: httpx.Response) -> Any:
    """The body of a success; on a 4xx/5xx, the API's own message in one line and exit 2."""
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            _fail(f"{resp.status_code}: {resp.text[:500] or resp.reason_phrase}")
        if isinstance(body, dict) and "detail" in body:
            code = f" {body['error']}" if isinstance(body.get("error"), str) else ""
            _fail(f"{resp.status_code}{code}: {body['detail']}")
        _fail(f"{resp.status_code}: {json.dumps(body)[:500]}")
    return resp.json() if resp.content else None


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="sweep spec, YAML or JSON")],
    server: Server = "http://127.0.0.1:8000",
    token: Token = None,
    watch: Annotated[bool, typer.Option("--watch", help="show a progress bar until the sweep ends")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe submission key")] = None,
) -> None:
    """Submit a sweep spec to the service."""
    spec = _load_spec_file(spec_file)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with _client(server, token) as c:
        sweep = _check(c.post("/v1/sweeps", json=spec, headers=headers))
        console.print(
            f"sweep {sweep['id']} '{sweep['name']}': {sweep['n_configs']} configurations x "
            f"{sweep['n_seeds']} seeds, {sweep['epochs']} epochs"
        )
        if watch:
            _watch(c, sweep["id"])


def _watch(c: httpx.Client, sweep_id: int) -> None:
    with Progress(
        TextColumn("[bold]sweep {task.fields[sid]}[/bold] {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs, {task.fields[cfg]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("sweep", total=None, sid=sweep_id, state=SweepState.QUEUED.value, cfg="")
        while True:
            sw = _check(c.get(f"/v1/sweeps/{sweep_id}"))
            p = sw["progress"]
            bar.update(
                task,
                total=sw["runs_total"],
                completed=sw["runs_done"],
                state=sw["state"],
                cfg=f"configs: {p['completed']} done, {p['running']} running, {p['waiting']} waiting, "
                f"{p['failed']} failed",
            )
            if sw["state"] not in ACTIVE_SWEEP_STATES:
                break
            time.sleep(1.0)
    console.print(f"sweep {sweep_id} {sw['state']}")


@app.command()
def status(
    sweep_id: Annotated[int | None, typer.Argument(help="a sweep id; all sweeps when left out")] = None,
    server: Server = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Show sweeps and their progress."""
    with _client(server, token) as c:
        items = (
            [_check(c.get(f"/v1/sweeps/{sweep_id}"))] if sweep_id else _check(c.get("/v1/sweeps"))["items"]
        )
    table = _table("id", "name", "workload", "state", "configs done/total", "runs done/total", "failed")
    for sw in items:
        p = sw["progress"]
        table.add_row(
            str(sw["id"]),
            sw["name"],
            sw["workload"],
            sw["state"],
            f"{p['completed'] + p['failed'] + p['cancelled']}/{p['total']}",
            f"{sw['runs_done']}/{sw['runs_total']}",
            str(p["failed"]),
        )
    console.print(table)


@app.command()
def export(
    sweep_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write")],
    server: Server = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Download one CSV row per run (configuration, seed, class, metrics)."""
    with _client(server, token) as c:
        resp = c.get(f"/v1/sweeps/{sweep_id}/export.csv")
        if resp.status_code >= 400:
            _check(resp)
        output.write_bytes(resp.content)
    console.print(f"wrote {output}")


@app.command()
def report(
    sweep_id: int,
    server: Server = "http://127.0.0.1:8000",
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="the JSON report instead of Markdown")] = False,
) -> None:
    """Print the sweep's diagnosis: the three questions answered with numbers (Markdown)."""
    with _client(server, token) as c:
        if as_json:
            print(json.dumps(_check(c.get(f"/v1/sweeps/{sweep_id}/report")), indent=2))
            return
        resp = c.get(f"/v1/sweeps/{sweep_id}/report", headers={"Accept": "text/markdown"})
        if resp.status_code >= 400:
            _check(resp)
    print(resp.text)


@app.command()
def regions(
    sweep_id: int,
    metric: Annotated[str, typer.Option(help="success, fluctuation, jump, final_loss, ...")] = "success",
    x: Annotated[str, typer.Option(help="the map's columns")] = "learning_rate",
    y: Annotated[str, typer.Option(help="the map's rows")] = "batch_size",
    server: Server = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Print a region map (rows y, columns x), each cell the metric over its seeds."""
    with _client(server, token) as c:
        region = _check(c.get(f"/v1/sweeps/{sweep_id}/regions", params={"metric": metric, "x": x, "y": y}))
    console.print(_region_table(region))


def _region_table(region: dict[str, Any]) -> Table:
    metric = region.get("metric", "success")
    table = Table(
        f"{region['y']} (rows) / {region['x']}",
        *(f"{v:.3g}" if isinstance(v, float) else str(v) for v in region["x_values"]),
        title=f"{metric} by {region['x']} and {region['y']}",
    )
    for yv, row in zip(region["y_values"], region["cells"], strict=True):
        cells = []
        for cell in row:
            value = None if cell is None else cell.get("value")
            if value is None:
                cells.append("-")
            elif metric == "success":
                cells.append(f"{100 * value:.0f}% ({cell['successes']}/{cell['n']})")
            else:
                cells.append(f"{value:.3g}")
        table.add_row(str(yv), *cells)
    return table


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
    table = _table("id", "name", "created", "revoked")
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
        _fail(exc.detail)
    console.print(f"token {token_id} revoked")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
