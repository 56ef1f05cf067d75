"""The dashboards in headless Chromium against a live server and real trained sweeps.

Each test loads a page, waits for its plots, checks what Plotly was given
(cells, traces, axes) through the graph div's ``data``/``layout``, and saves a
full-page screenshot under ``test-artifacts/screenshots/``. The ``tab``
fixture fails any test whose page requested anything outside the host or
logged a JavaScript error.
"""

from __future__ import annotations

import math
import threading
from typing import Any
from urllib.parse import urlparse

import pytest

from service.core.repo import sweeps as sweeps_repo
from tests.browser.conftest import BATCHES, LRS, OPTUNA_DASHBOARD, LiveServer, Sweeps, Tab
from tests.helpers import wait_for
from workers.loop import WorkerLoop

pytestmark = pytest.mark.browser
FAILED_COLOURS = {"diverged": "#D55E00", "rises_after_min": "#E69F00", "stuck_at_chance": "#CC79A7"}


def _roles(plot: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [t for t in plot["data"] if (t.get("meta") or {}).get("role") == role]


def _loopback_only(tab: Tab) -> None:
    hosts = {urlparse(u).hostname for u in tab.requests}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts


def test_sweeps_list_shows_each_sweep_and_filters_sorts_and_pages(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    page = tab.page
    page.goto(f"{server.url}/sweeps")
    rows = page.locator("#sweeps tbody tr")
    assert rows.count() == 4
    ids = [int(rows.nth(i).get_attribute("data-sweep-id") or 0) for i in range(4)]
    assert ids == sorted(ids, reverse=True)  # newest first
    finished = page.locator(f"tr[data-sweep-id='{sweeps.finished['id']}']")
    assert "completed" in finished.locator(".state").inner_text()
    assert "preset:cos_arccos" in finished.inner_text()
    assert "8 configs × 3 seeds" in finished.inner_text()
    assert finished.locator(".progress .label").inner_text() == "24 / 24 runs"
    headline = sweeps.api.get(f"/v1/sweeps/{sweeps.finished['id']}/report").json()["headline"]
    assert finished.locator(".headline").inner_text() == headline
    running = page.locator(f"tr[data-sweep-id='{sweeps.running['id']}']")
    assert running.locator(".progress .label").inner_text() == f"{sweeps.running['runs_done']} / 16 runs"
    queued = page.locator(f"tr[data-sweep-id='{sweeps.queued['id']}']")
    assert "queued" in queued.inner_text() and "No finished runs yet." in queued.inner_text()
    tab.screenshot("sweeps-list")

    page.select_option("select[name=state]", "completed")
    page.select_option("select[name=sort]", "name")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**state=completed**")
    names = page.locator("#sweeps tbody tr td:first-child a").all_inner_texts()
    assert names == [f"#{sweeps.betas['id']} adam betas", f"#{sweeps.finished['id']} lr x batch size"]

    page.goto(f"{server.url}/sweeps?per_page=3")
    assert page.locator("#sweeps tbody tr").count() == 3
    assert "Showing 1–3 of 4" in page.locator("#count").inner_text()
    page.click("a[rel=next]")
    assert page.locator("#sweeps tbody tr").count() == 1
    assert "page 2 of 2" in page.locator(".pager").inner_text()
    _loopback_only(tab)


def test_finished_sweep_page_draws_map_edge_loss_and_diagnosis(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.finished["id"]
    page = tab.page
    page.goto(f"{server.url}/sweeps/{sid}")
    tab.wait_renders()

    region = tab.plot("region-plot")
    heat = [t for t in region["data"] if t["type"] == "heatmap"]
    assert len(heat) == 1
    z = heat[0]["z"]
    assert len(z) == len(BATCHES) and all(len(row) == len(LRS) for row in z)
    assert all(v is not None and 0 <= v <= 1 for row in z for v in row)
    expected = sweeps.api.get(f"/v1/sweeps/{sid}/regions").json()
    assert z == [[c["success_rate"] for c in row] for row in expected["cells"]]
    dominant = _roles(region, "dominant")
    assert sum(len(t["x"]) for t in dominant) == len(LRS) * len(BATCHES)  # one marker per cell
    classes = {c["dominant_class"] for row in expected["cells"] for c in row}
    assert {t["meta"]["run_class"] for t in dominant} == classes
    assert region["layout"]["xaxis"]["ticktext"] == ["0.001", "0.01", "0.1", "1"]
    assert "learning rate" in region["layout"]["xaxis"]["title"]["text"]
    assert "examples per step" in region["layout"]["yaxis"]["title"]["text"]
    edges = sweeps.api.get(f"/v1/sweeps/{sid}/edge").json()["edges"]
    edge_traces = _roles(region, "edge")
    drawable = [e for e in edges if e["censored"] != "below"]
    assert len(edge_traces) == 1 and len(edge_traces[0]["x"]) == len(drawable)

    loss = tab.plot("loss-lr-plot")
    series = _roles(loss, "series")
    assert [t["name"] for t in series] == [f"batch size {b}" for b in BATCHES]
    assert all(t["x"] == LRS for t in series)
    assert loss["layout"]["xaxis"]["type"] == "log"
    failed = _roles(loss, "failed")
    n_failed_points = sum(1 for row in expected["cells"] for c in row if c["n"] - c["successes"] > 0)
    assert len(failed) == 1 and len(failed[0]["x"]) == n_failed_points
    assert failed[0]["marker"]["color"] == "#D55E00"

    edge_plot = tab.plot("edge-plot")
    assert edge_plot["layout"]["xaxis"]["type"] == "log" and edge_plot["layout"]["yaxis"]["type"] == "log"
    drawn = sum(len(t["x"]) for t in _roles(edge_plot, "edge") + _roles(edge_plot, "edge-censored"))
    assert drawn == len(edges)
    assert "lr_max ∝ B^" in edge_plot["layout"]["title"]["text"]

    report = sweeps.api.get(f"/v1/sweeps/{sid}/report").json()
    assert page.locator("#headline").inner_text() == report["headline"]
    page.click("#report-details summary")
    assert "Remedies the data supports" in page.locator("#report").inner_text()
    assert page.locator("#beta-section").is_hidden()
    assert page.locator("#configs tbody tr").count() == len(LRS) * len(BATCHES)
    with sweeps.db.transaction() as s:
        study_id = sweeps_repo.get_sweep(s, sweep_id=sid).study_id
    assert page.get_attribute("#optuna-link", "href") == f"{OPTUNA_DASHBOARD}/dashboard/studies/{study_id}"
    with page.expect_download() as dl:
        page.click("#csv-link")
    csv_text = open(dl.value.path(), encoding="utf-8").read()
    assert csv_text.startswith("run_id,config_id,") and len(csv_text.strip().splitlines()) == 1 + 24
    tab.screenshot("sweep-finished")
    tab.screenshot_of("#region-section", "sweep-finished-region")
    tab.screenshot_of("#loss-lr-section", "sweep-finished-loss-vs-lr")

    # Axes are selectable: batch size across, learning rate up.
    page.select_option("#region-x", "batch_size")
    page.wait_for_function(
        "document.getElementById('region-plot').layout.xaxis.title.text.startsWith('batch size')"
    )
    z = next(t for t in tab.plot("region-plot")["data"] if t["type"] == "heatmap")["z"]
    assert len(z) == len(LRS) and all(len(row) == len(BATCHES) for row in z)
    assert len(_roles(tab.plot("region-plot"), "edge")) == 1
    _loopback_only(tab)


def test_beta_sweep_page_draws_beta_plane_with_reference_curve_and_slices(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.betas["id"]
    page = tab.page
    page.goto(f"{server.url}/sweeps/{sid}")
    tab.wait_renders()
    assert page.locator("#beta-section").is_visible()
    beta = tab.plot("beta-plot")
    heat = next(t for t in beta["data"] if t["type"] == "heatmap")
    assert len(heat["z"]) == 3 and all(len(r) == 3 for r in heat["z"])
    ref = _roles(beta, "reference")
    assert len(ref) == 1 and len(ref[0]["x"]) > 10
    # At beta_2 = 0.9 (row 0) the curve is at beta_1 = sqrt(0.9), placed between the columns
    # 0.9 and 0.99 on the -log(1 - beta) scale the page uses for betas.
    t = [-math.log(1 - b) for b in (0.9, 0.99)]
    expected_x = 1 + (-math.log(1 - math.sqrt(0.9)) - t[0]) / (t[1] - t[0])
    assert ref[0]["y"][0] == pytest.approx(0) and ref[0]["x"][0] == pytest.approx(expected_x, abs=1e-6)
    assert "pooled over learning_rate" in beta["layout"]["title"]["text"]
    text = heat["text"]
    assert all(t.endswith("/4") for row in text for t in row)  # 2 learning rates x 2 seeds, pooled

    page.select_option("#beta-slice-learning_rate", "0.01")
    page.wait_for_function(
        "document.getElementById('beta-plot').layout.title.text.includes('learning_rate=0.01')"
    )
    heat = next(t for t in tab.plot("beta-plot")["data"] if t["type"] == "heatmap")
    assert all(t.endswith("/2") for row in heat["text"] for t in row)
    assert "β₁" in tab.plot("beta-plot")["layout"]["xaxis"]["title"]["text"]
    page.locator("#beta-section").scroll_into_view_if_needed()
    tab.screenshot("sweep-betas")
    tab.screenshot_of("#beta-section", "sweep-betas-plane")
    _loopback_only(tab)


def test_running_and_queued_sweeps_show_partial_progress(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    page = tab.page
    run = sweeps.refresh(sweeps.running)
    page.goto(f"{server.url}/sweeps/{run['id']}")
    tab.wait_renders()
    assert page.locator("#progress .label").inner_text() == f"{run['runs_done']} / {run['runs_total']} runs"
    assert "running" in page.locator("#state").inner_text()
    heat = next(t for t in tab.plot("region-plot")["data"] if t["type"] == "heatmap")
    filled = sum(v is not None for row in heat["z"] for v in row)
    assert filled == run["progress"]["completed"]
    tab.screenshot("sweep-running")

    page.goto(f"{server.url}/sweeps/{sweeps.queued['id']}")
    tab.wait_renders()
    assert page.locator("#progress .label").inner_text() == "0 / 16 runs"
    assert "No finished runs yet" in page.locator("#region-plot").inner_text()
    assert "queued" in page.locator("#state").inner_text()
    tab.screenshot("sweep-queued")
    _loopback_only(tab)


def _config_with_failures(sweeps: Sweeps) -> dict[str, Any]:
    items = sweeps.api.get(f"/v1/sweeps/{sweeps.finished['id']}/configs").json()["items"]
    mixed = [c for c in items if 0 < c["summary"]["successes"] < c["summary"]["n"]]
    failing = [c for c in items if c["summary"]["successes"] < c["summary"]["n"]]
    return (mixed or failing)[0]


def test_config_page_draws_seed_band_with_failed_seeds_apart(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.finished["id"]
    config = _config_with_failures(sweeps)
    page = tab.page
    page.goto(f"{server.url}/sweeps/{sid}/configs/{config['config_id']}")
    tab.wait_renders()
    runs = sweeps.api.get(f"/v1/sweeps/{sid}/runs", params={"config_id": config["config_id"]}).json()["items"]
    failed_runs = [r for r in runs if r["run_class"] in ("diverged", "rises_after_min", "stuck_at_chance")]
    for div in ("band-loss", "band-accuracy"):
        plot = tab.plot(div)
        failed = _roles(plot, "failed")
        assert sorted(t["meta"]["run_id"] for t in failed) == sorted(r["id"] for r in failed_runs)
        for t in failed:
            run = next(r for r in runs if r["id"] == t["meta"]["run_id"])
            assert t["line"]["color"] == FAILED_COLOURS[run["run_class"]]
        stable = len(runs) - len(failed_runs)
        assert len(_roles(plot, "seed")) == stable
        assert len(_roles(plot, "median")) == (1 if stable else 0)
        assert len(_roles(plot, "band")) == (1 if stable else 0)
        assert "epoch" in plot["layout"]["xaxis"]["title"]["text"]
    assert tab.plot("band-loss")["layout"]["yaxis"]["type"] == "log"
    assert page.locator("#seeds tbody tr").count() == 3
    assert f"{config['summary']['successes']} of 3 seeds" in page.locator("#success").inner_text()
    tab.screenshot("config-with-failed-seeds")
    _loopback_only(tab)


def test_run_page_draws_epoch_and_step_curves_with_class_metrics(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.finished["id"]
    runs = sweeps.api.get(f"/v1/sweeps/{sid}/runs", params={"limit": 100}).json()["items"]
    run = next(r for r in runs if r["run_class"] in ("converged", "noisy", "slow"))
    page = tab.page
    page.goto(f"{server.url}/runs/{run['id']}")
    tab.wait_renders()
    loss = tab.plot("run-loss")
    names = [t["name"] for t in loss["data"]]
    assert "training loss (full set)" in names and "running mean over mini-batches" in names
    full = next(t for t in loss["data"] if t["name"] == "training loss (full set)")
    assert full["x"] == list(range(9))  # epoch 0 (initialisation) .. 8
    assert len(tab.plot("run-accuracy")["data"]) == 1
    steps = tab.plot("run-steps")
    assert steps is not None and len(steps["data"][0]["x"]) > 8
    assert "optimizer step" in steps["layout"]["xaxis"]["title"]["text"]
    lr_plot = tab.plot("run-lr")
    assert {t["name"] for t in lr_plot["data"]} == {"learning rate in effect", "global gradient norm"}
    assert run["run_class"] in page.locator("#run-class .cls").get_attribute("data-class")
    metrics = page.locator("#metrics").inner_text()
    assert "L_min" in metrics and "rebound" in metrics
    tab.screenshot("run-stable")

    failed = next((r for r in runs if r["status"] == "nonfinite"), None)
    if failed is not None:
        page.goto(f"{server.url}/runs/{failed['id']}")
        tab.wait_renders()
        assert "diverged" in page.locator("#run-class").inner_text()
        tab.screenshot("run-diverged")
    _loopback_only(tab)


def test_run_and_config_pages_draw_sharpness_against_its_threshold(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    """The Adam sweep records sharpness every 2 epochs: epochs 0, 2, 4 on a log axis, loss beside."""
    sid = sweeps.betas["id"]
    runs = sweeps.api.get(f"/v1/sweeps/{sid}/runs", params={"limit": 100}).json()["items"]
    # A stable run, so that its configuration has stable seeds to draw the band over.
    run = next(r for r in runs if r["run_class"] in ("converged", "noisy", "slow"))
    page = tab.page
    page.goto(f"{server.url}/runs/{run['id']}")
    tab.wait_renders()
    plot = tab.plot("run-sharpness")
    by_name = {t["name"]: t for t in plot["data"]}
    pre = by_name["preconditioned sharpness (P⁻¹H)"]
    threshold = by_name["threshold of the preconditioned sharpness"]
    assert pre["x"] == [0, 2, 4] and pre["y"][0] is None and all(v > 0 for v in pre["y"][1:])
    lr, b1 = run["params"]["learning_rate"], run["params"]["beta_1"]
    assert threshold["y"][-1] == pytest.approx((2 + 2 * b1) / ((1 - b1) * lr), rel=1e-4)
    assert by_name["training loss (right axis)"]["yaxis"] == "y2"
    assert plot["layout"]["yaxis"]["type"] == "log"
    assert page.locator("#no-sharpness").is_hidden()
    tab.screenshot("run-sharpness")

    page.goto(f"{server.url}/sweeps/{sid}/configs/{run['config_id']}")
    tab.wait_renders()
    band = tab.plot("band-sharpness")
    names = [t.get("name") for t in band["data"]]
    assert "median preconditioned sharpness" in names and "stability threshold (median)" in names
    assert band["layout"]["yaxis"]["type"] == "log"
    tab.screenshot_of("#sharpness-section", "config-sharpness-band")

    plain = sweeps.api.get(f"/v1/sweeps/{sweeps.finished['id']}/runs", params={"limit": 1}).json()["items"][0]
    page.goto(f"{server.url}/runs/{plain['id']}")
    tab.wait_renders()
    assert page.locator("#no-sharpness").is_visible() and page.locator("#run-sharpness").is_hidden()
    _loopback_only(tab)


def test_pages_need_a_token_when_reads_are_private(
    private_server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    page = tab.page
    resp = page.goto(f"{private_server.url}/sweeps/{sweeps.finished['id']}")
    assert resp is not None and resp.status == 401
    assert "?token=" in page.locator("#error-message").inner_text()
    resp = page.goto(f"{private_server.url}/sweeps/{sweeps.finished['id']}?token=not-a-token")
    assert resp is not None and resp.status == 401
    tab.errors.clear()  # the two 401 documents above are logged as failed loads

    resp = page.goto(f"{private_server.url}/sweeps/{sweeps.finished['id']}?token={sweeps.token}")
    assert resp is not None and resp.status == 200
    assert "token=" not in page.url  # the secret does not stay in the address bar or history
    tab.wait_renders()
    assert next(t for t in tab.plot("region-plot")["data"] if t["type"] == "heatmap")["z"]
    cookie = next(c for c in tab.context.cookies() if c["name"] == "sweeps_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.goto(f"{private_server.url}/sweeps")
    assert page.locator("#sweeps tbody tr").count() == 4
    _loopback_only(tab)


def test_sweep_page_follows_progress_live_without_reloading(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    """Runs last: it trains one more configuration of the running sweep while the page is open."""
    before = sweeps.refresh(sweeps.running)
    page = tab.page
    page.goto(f"{server.url}/sweeps/{before['id']}")
    tab.wait_renders()
    page.evaluate("window.__same_document = true")
    renders = int(page.evaluate("document.body.dataset.renders"))
    worker = WorkerLoop(db=sweeps.db, settings=sweeps.settings.model_copy(update={"pack_max_replicas": 2}))
    thread = threading.Thread(target=worker.run, kwargs={"max_configs": 1, "max_idle_s": 5})
    thread.start()
    try:
        wait_for(lambda: sweeps.refresh(before)["runs_done"] > before["runs_done"], 60, "one more config")
    finally:
        thread.join(timeout=60)
    after = sweeps.refresh(before)
    label = f"{after['runs_done']} / {after['runs_total']} runs"
    page.wait_for_function(
        f"document.querySelector('#progress .label').textContent === '{label}'",
        timeout=15_000,
    )
    tab.wait_renders(renders + 1)
    assert page.evaluate("window.__same_document") is True  # updated in place, not reloaded
    heat = next(t for t in tab.plot("region-plot")["data"] if t["type"] == "heatmap")
    assert sum(v is not None for row in heat["z"] for v in row) == after["progress"]["completed"]
    tab.screenshot("sweep-running-updated")
    _loopback_only(tab)


def test_sweep_page_draws_fluctuation_map_and_fluctuation_versus_batch_size(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.finished["id"]
    page = tab.page
    page.goto(f"{server.url}/sweeps/{sid}")
    tab.wait_renders()

    expected = sweeps.api.get(f"/v1/sweeps/{sid}/regions", params={"metric": "fluctuation"}).json()
    fluct = tab.plot("fluct-plot")
    heat = _roles(fluct, "fluctuation")
    assert len(heat) == 1
    z = heat[0]["z"]
    assert len(z) == len(BATCHES) and all(len(row) == len(LRS) for row in z)  # one cell per grid point
    assert z == [[None if c is None else c["value"] for c in row] for row in expected["cells"]]
    assert any(v is not None for row in z for v in row)

    fits = [
        f
        for f in sweeps.api.get(f"/v1/sweeps/{sid}/report").json()["fluctuation"]["fits"]
        if f["along"] == "batch_size" and f["slope"] is not None
    ]
    plot = tab.plot("fluct-batch-plot")
    series, lines = _roles(plot, "fluct-series"), _roles(plot, "fluct-fit")
    assert len(series) == len(fits) == len(lines)  # one series and one fitted line per learning rate
    for t, f in zip(series, fits, strict=True):
        assert t["x"] == [p["x"] for p in f["points"]]
        assert t["y"] == pytest.approx([p["median"] for p in f["points"]])
    assert plot["layout"]["xaxis"]["type"] == "log" and plot["layout"]["yaxis"]["type"] == "log"
    if fits:
        assert "B^" in plot["layout"]["title"]["text"]
    tab.screenshot_of("#fluct-section", "sweep-finished-fluctuation-map")
    tab.screenshot_of("#fluct-batch-section", "sweep-finished-fluctuation-vs-batch")
    _loopback_only(tab)


def test_config_page_draws_full_set_loss_beside_running_mean(
    server: LiveServer, sweeps: Sweeps, tab: Tab
) -> None:
    sid = sweeps.finished["id"]
    config = next(
        c
        for c in sweeps.api.get(f"/v1/sweeps/{sid}/configs").json()["items"]
        if c["summary"]["successes"] > 0
    )
    tab.page.goto(f"{server.url}/sweeps/{sid}/configs/{config['config_id']}")
    tab.wait_renders()
    plot = tab.plot("band-loss")
    assert len(_roles(plot, "median")) == 1 and len(_roles(plot, "running-median")) == 1
    tab.screenshot_of("#band-loss", "config-full-set-versus-running-mean")
    _loopback_only(tab)
