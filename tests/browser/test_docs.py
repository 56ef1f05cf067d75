"""/docs (Swagger UI) and /redoc (ReDoc) render in headless Chromium from files installed with
the package: every request the pages make stays on loopback (the ``tab`` fixture fails the test
otherwise, and on any JavaScript error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.api.app import create_app
from service.core.db import Database
from service.core.migrate import upgrade
from tests.browser.conftest import LiveServer, Tab
from tests.conftest import make_settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An empty database is enough: the pages show the OpenAPI document, not data."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('docs')) / 'sweeps.db'}"
    upgrade(url)
    db = Database(url)
    with LiveServer(create_app(make_settings(url), db)) as live:
        yield live
    db.dispose()


def test_swagger_ui_lists_the_operations_offline(docs_server: LiveServer, tab: Tab) -> None:
    tab.page.goto(f"{docs_server.url}/docs")
    tab.page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = tab.page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/sweeps" in {p.strip() for p in paths}
    assert tab.page.locator(".opblock-post").count() >= 1
    assert "Stability Sweeps" in tab.page.locator(".info .title").inner_text()
    tab.screenshot("docs-swagger-ui")
    assert any(u.endswith("/static/docs/swagger-ui-bundle.js") for u in tab.requests)


def test_redoc_shows_the_title_offline(docs_server: LiveServer, tab: Tab) -> None:
    tab.page.goto(f"{docs_server.url}/redoc")
    heading = tab.page.locator("h1", has_text="Stability Sweeps")
    heading.first.wait_for(timeout=30_000)
    assert tab.page.locator("[data-section-id]").count() > 0  # the operations' sections
    tab.screenshot("docs-redoc")
    assert any(u.endswith("/static/docs/redoc.standalone.js") for u in tab.requests)
