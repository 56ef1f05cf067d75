"""The ``sweeps`` commands that talk to a running server over HTTP: submit, status, export, report, regions.

They use only the public API (the OpenAPI document is the contract), and fail politely: a server that
cannot be reached, or any 4xx/5xx, is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.cli_output import console, fail, folding_table
from service.core.spec_yaml import load_spec_yaml
from service.core.states import ACTIVE_SWEEP_STATES, SweepState

Server = Annotated[str, typer.Option("--server", envvar="SWEEPS_SERVER", help="API base URL")]
Token = Annotated[str | None, typer.Option("--token", envvar="SWEEPS_TOKEN", help="API token for writes")]


def _load_spec_file(path: Path) -> Any:
    if not path.exists():
        fail(f"{path} does not exist")
    text = path.read_text()
    try:
        return json.loads(text) if path.suffix == ".json" else load_spec_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        fail(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}")


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
            fail(f"the API at {self.server} did not answer {request.method} {request.url.path} in time")
        except httpx.TransportError as exc:
            fail(
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
            fail(f"{resp.status_code}: {resp.text[:500] or resp.reason_phrase}")
        if isinstance(body, dict) and "detail" in body:
            code = f" {body['error']}" if isinstance(body.get("error"), str) else ""
            fail(f"{resp.status_code}{code}: {body['detail']}")
        fail(f"{resp.status_code}: {json.dumps(body)[:500]}")
    return resp.json() if resp.content else None


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
    table = folding_table(
        "id", "name", "workload", "state", "configs done/total", "runs done/total", "failed"
    )
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


def register(app: typer.Typer) -> None:
    """Add these commands to the ``sweeps`` application."""
    for command in (submit, status, export, report, regions):
        app.command()(command)
