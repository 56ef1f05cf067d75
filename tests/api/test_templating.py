"""service/api/templating.py: the pages' filters, the escaped Markdown subset, loss units, and
autoescaped error pages over real HTTP."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from fastapi.testclient import TestClient

from service.api import templating
from service.api.templating import CLASS_STYLE, loss_unit, markdown_html
from service.core.analysis import RUN_CLASSES
from service.core.config import Settings
from service.core.db import Database
from service.core.workloads import PRESETS
from tests.core.results.rows import sweep_record
from tests.helpers import new_sweep


def test_num_filter() -> None:
    num = templating._num
    assert (num(None), num(True), num("adam"), num(32)) == ("—", "True", "adam", "32")
    assert (num(math.nan), num(math.inf), num(-math.inf)) == ("non-finite",) * 3
    assert (num(0.0), num(0.123456), num(12.5), num(1234.5)) == ("0", "0.123", "12.5", "1.23e+03")
    assert (num(1e-4), num(2.5e6), num(0.001)) == ("1.00e-04", "2.50e+06", "0.001")
    assert num(0.123456, 5) == "0.12346"


def test_pct_and_when_filters() -> None:
    assert (templating._pct(None), templating._pct(0.254), templating._pct(1)) == ("—", "25%", "100%")
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert (templating._when(None), templating._when(when)) == ("—", "2026-03-04 05:06 UTC")


def test_markdown_subset_is_escaped_before_tags_are_added() -> None:
    md = "# Title\n\n**Head <b>**\n\n## Stable <region>\n- `lr=<1>` & **bold**\n- two\nafter"
    assert str(markdown_html(md)) == (
        "<p><strong>Head &lt;b&gt;</strong></p>\n"
        "<h3>Stable &lt;region&gt;</h3>\n"
        "<ul>\n<li><code>lr=&lt;1&gt;</code> &amp; <strong>bold</strong></li>\n<li>two</li>\n</ul>\n"
        "<p>after</p>"
    )
    assert str(markdown_html("- last")) == "<ul>\n<li>last</li>\n</ul>"  # a list at the end is closed
    assert str(markdown_html("<script>alert(1)</script>")) == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_every_run_class_has_a_colour_and_a_marker() -> None:
    assert set(CLASS_STYLE) == set(RUN_CLASSES)
    assert len({s["color"] for s in CLASS_STYLE.values()}) == len(RUN_CLASSES)
    assert len({s["symbol"] for s in CLASS_STYLE.values()}) == len(RUN_CLASSES)


def test_loss_unit_follows_the_presets_loss() -> None:
    mse = next(name for name, info in PRESETS.items() if info.loss == "mse")
    xent = next(name for name, info in PRESETS.items() if info.loss != "mse")
    assert loss_unit(sweep_record({"workload": {"preset": mse}})) == "squared error"
    assert loss_unit(sweep_record({"workload": {"preset": xent}})) == "nats"
    assert loss_unit(sweep_record({"workload": {"id": 3}})) == "nats"  # an upload: unknown, nats
    assert loss_unit(sweep_record({"workload": {"preset": "retired"}})) == "nats"
    assert loss_unit(sweep_record({})) == "nats"


def test_pages_escape_what_users_wrote(client: TestClient, db: Database, settings: Settings) -> None:
    sid = new_sweep(db, settings, name="<b>bold</b> & co")
    page = client.get(f"/sweeps/{sid}")
    assert page.status_code == 200
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page.text and "<b>bold</b>" not in page.text


def test_error_pages_are_html_with_the_status_and_the_message(client: TestClient) -> None:
    r = client.get("/sweeps", params={"sort": "<i>"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Error 422</h1>" in r.text and "sort must be one of" in r.text
    missing = client.get("/sweeps/12345")
    assert missing.status_code == 404 and "<h1>Error 404</h1>" in missing.text
    assert 'id="error-message">sweep 12345' in missing.text
