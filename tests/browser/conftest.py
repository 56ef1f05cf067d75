"""Real sweeps, a live uvicorn server and headless Chromium for the dashboard tests.

One session-scoped SQLite database holds four sweeps submitted through the
API and trained by a real in-process worker: two finished ones (learning rate
x batch size, and the Adam beta plane), one stopped part way ("running") and
one nobody has picked up ("queued"). The app is served by uvicorn on a free
loopback port; Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from service.api.app import create_app
from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.migrate import upgrade
from tests.conftest import ARTIFACTS, make_settings
from tests.helpers import LiveServer
from workers.loop import WorkerLoop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
OPTUNA_DASHBOARD = "http://127.0.0.1:8081"
# cos(t) versus arccos(t): learns in a few epochs at a moderate lr, fails above it.
TOY = {"preset": "cos_arccos", "params": {"n_train": 16, "timesteps": 8, "units": 4}}
LRS = [1e-3, 1e-2, 1e-1, 1.0]
BATCHES = [4, 12]


@dataclass
class Sweeps:
    finished: dict[str, Any]
    betas: dict[str, Any]
    running: dict[str, Any]
    queued: dict[str, Any]
    token: str
    db: Database
    settings: Settings
    api: TestClient

    def refresh(self, sweep: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.api.get(f"/v1/sweeps/{sweep['id']}").json()
        return out


def _spec(name: str, space: dict[str, Any], *, seeds: int, epochs: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "workload": TOY, "epochs": epochs, "seeds": seeds, "space": space, **extra}


@pytest.fixture(scope="session")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweeps]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'sweeps.db'}"
    upgrade(url)
    settings = make_settings(url, optuna_dashboard_url=OPTUNA_DASHBOARD)
    db = Database(url)
    with db.transaction() as s:
        _, token = tokens.create_token(s, name="browser-tests")
    api = TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {token}"})

    def submit(spec: dict[str, Any]) -> dict[str, Any]:
        r = api.post("/v1/sweeps", json=spec)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    finished = submit(
        _spec(
            "lr x batch size",
            {"learning_rate": LRS, "batch_size": BATCHES},
            seeds=3,
            epochs=8,
            record_steps=True,
            description="cos/arccos toy: where does RMSprop stop being stable?",
        )
    )
    betas = submit(
        _spec(
            "adam betas",
            {
                "optimizer": ["adam"],
                "learning_rate": [1e-2, 1e-1],
                "batch_size": [4],
                "beta_1": [0.5, 0.9, 0.99],
                "beta_2": [0.9, 0.99, 0.999],
            },
            seeds=2,
            epochs=4,
            record_sharpness={"every": 2, "iterations": 8},
        )
    )
    WorkerLoop(db=db, settings=settings).run(max_idle_s=0.5)
    running = submit(_spec("half done", {"learning_rate": LRS, "batch_size": BATCHES}, seeds=2, epochs=4))
    # One configuration per claim, stopped after three: a sweep caught mid-way.
    WorkerLoop(db=db, settings=make_settings(url, pack_max_replicas=2)).run(max_configs=3, max_idle_s=5)
    queued = submit(_spec("not started", {"learning_rate": LRS, "batch_size": BATCHES}, seeds=2, epochs=4))
    result = Sweeps(
        finished=api.get(f"/v1/sweeps/{finished['id']}").json(),
        betas=api.get(f"/v1/sweeps/{betas['id']}").json(),
        running=api.get(f"/v1/sweeps/{running['id']}").json(),
        queued=queued,
        token=token,
        db=db,
        settings=settings,
        api=api,
    )
    assert result.finished["state"] == "completed" and result.betas["state"] == "completed"
    assert result.running["state"] == "running"
    assert 0 < result.running["runs_done"] < result.running["runs_total"]
    yield result
    api.close()
    db.dispose()


@pytest.fixture(scope="session")
def server(sweeps: Sweeps) -> Iterator[LiveServer]:
    with LiveServer(create_app(sweeps.settings, sweeps.db)) as live:
        yield live


@pytest.fixture(scope="session")
def private_server(sweeps: Sweeps) -> Iterator[LiveServer]:
    """The same database served with reads behind a token."""
    settings = sweeps.settings.model_copy(update={"read_access": "token"})
    with LiveServer(create_app(settings, sweeps.db)) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """A page with everything it requested and every error it logged."""

    page: Page
    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def screenshot_of(self, selector: str, name: str) -> Path:
        """A close-up of one part of the page (a plot and its legend)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.locator(selector).screenshot(path=str(path))
        return path

    def plot(self, div_id: str) -> dict[str, Any]:
        """The Plotly graph div's data and layout."""
        out: dict[str, Any] = self.page.evaluate(
            """(id) => { const d = document.getElementById(id);
                 return d && d.data ? {data: d.data, layout: d.layout} : null; }""",
            div_id,
        )
        return out

    def wait_renders(self, n: int = 1, timeout: float = 30_000) -> None:
        self.page.wait_for_function(f"Number(document.body.dataset.renders || 0) >= {n}", timeout=timeout)


def _on_loopback(url: str) -> bool:
    """data: URLs never leave the page; a blob: URL names its origin after the prefix (ReDoc and
    Swagger UI build some of their images and workers that way)."""
    if url.startswith("data:"):
        return True
    return urlparse(url.removeprefix("blob:")).hostname in ("127.0.0.1", "localhost")


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    t = Tab(page=page, context=context)
    page.on("request", lambda r: t.requests.append(r.url))
    page.on("pageerror", lambda e: t.errors.append(f"page error: {e}"))
    page.on("console", lambda m: t.errors.append(f"console: {m.text}") if m.type == "error" else None)
    yield t
    context.close()
    outside = [u for u in t.requests if not _on_loopback(u)]
    assert outside == [], f"requests left the host: {outside}"
    assert t.errors == [], t.errors
