"""Run an example sweep end to end and write what the service concluded.

    flock /tmp/cpu-heavy.lock python benchmarks/run_examples.py sensor_lstm [--workers 2]

For each example: a fresh SQLite file, ``sweeps serve --workers N`` (API plus
local worker processes, as a user starts it), the spec ``examples/<name>.yaml``
submitted over HTTP, a wait until the sweep is done, then ``/report`` (JSON
and Markdown), ``/edge``, ``/regions`` and the runs are fetched. It writes

- ``docs/results/<name>.json``: the figures the report quotes (wall time, per-
  configuration success rates with Wilson intervals, class mixes, the
  example-specific figures below) and the service's edge and report JSON;
- ``docs/results/<name>.md``: the service's Markdown report;
- ``docs/images/<name>_region.png``: the region map, drawn with the plotly.js
  shipped in the ``plotly`` package and captured by headless Chromium.

Example-specific figures (computed from the stored runs):

- sensor_lstm: per learning rate and batch size, the median over seeds of
  how far the loss jumps from epoch to epoch in the second half of the run:
  the std of the changes of log loss and the largest single rise; next to
  them the classifier's ``late_detrended_std`` and ``late_increase_frac``.
- sequence_rnn: per beta_1 (and clipnorm / schedule when swept), the runs
  that "rise after their minimum" at each lr, and the stable band: the lrs
  with success rate >= 0.5 and no diverged seed.
- sequence_rnn with ``record_sharpness``: per setting and lr, the median peak
  ratio of the (preconditioned) sharpness to its threshold and how many failed
  runs had reached it first (docs/sharpness.md).
- pixel_color: per configuration, successes k/n with the Wilson 95% interval,
  and success by init seed and by data-order seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Which plane each example's region map shows, and the slices to draw.
REGIONS: dict[str, list[dict[str, Any]]] = {
    "sensor_lstm": [{"x": "learning_rate", "y": "batch_size"}],
    "cos_arccos": [{"x": "learning_rate", "y": "batch_size"}],
    "sequence_rnn": [{"x": "learning_rate", "y": "beta_1"}],
    "pixel_color": [{"x": "learning_rate", "y": "batch_size"}],
}


# Per-example cap on replicas per pack (none now). pixel_color's 40 replicas share one batch
# size; claims used to round the fair share up, so one worker took them all unless packs were
# capped at 20. Claims now take a shrinking fair share (service.core.work.claims.pack_size),
# which spreads them.
PACK_MAX: dict[str, int] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes], workers: int, timeout: float = 120) -> None:
    """Until the API is ready and every local worker is up, so the first claim sees them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sweeps serve exited with {proc.returncode}")
        try:
            if (
                httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                and len(httpx.get(f"{base}/v1/workers", timeout=2).json()) >= workers
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("sweeps serve did not become ready")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server and its workers (they stop after their epoch), SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _median(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def _config_key(params: dict[str, Any], dims: list[str]) -> tuple[Any, ...]:
    return tuple(params.get(d) for d in dims)


def per_config(runs: list[dict[str, Any]], dims: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(_config_key(r["params"], dims), []).append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: [str(v) for v in kv[0]]):
        classes: dict[str, int] = {}
        for r in rs:
            classes[r["run_class"]] = classes.get(r["run_class"], 0) + 1
        k = classes.get("converged", 0) + classes.get("noisy", 0) + classes.get("slow", 0)
        k_conv = classes.get("converged", 0) + classes.get("noisy", 0)
        out.append(
            {
                **dict(zip(dims, key, strict=True)),
                "n": len(rs),
                "classes": classes,
                "not_failed": k,
                "converged_or_noisy": k_conv,
                "wilson_not_failed": _wilson(k, len(rs)),
                "median_final_accuracy": _median([r["final_accuracy"] for r in rs]),
                "median_final_loss": _median([r["final_loss"] for r in rs]),
                "median_late_detrended_std": _median([r["metrics"].get("late_detrended_std") for r in rs]),
                "median_late_increase_frac": _median([r["metrics"].get("late_increase_frac") for r in rs]),
                "median_rebound": _median([r["metrics"].get("rebound") for r in rs]),
                "median_late_dlog_std": _median([r.get("late_dlog_std") for r in rs]),
                "median_late_max_jump": _median([r.get("late_max_jump") for r in rs]),
            }
        )
    return out


def late_jumps(losses: list[float | None]) -> tuple[float | None, float | None]:
    """Over the second half of a run: the std of epoch-to-epoch changes of log loss (how far the
    full-training-set loss jumps, in relative terms, whatever its level) and the largest rise
    (loss(t+1) / loss(t) - 1)."""
    vals = [v for v in losses if v is not None]
    if len(vals) != len(losses) or len(vals) < 8 or not all(math.isfinite(v) and v > 0 for v in vals):
        return None, None
    late = vals[len(vals) // 2 :]
    d = [math.log(b / a) for a, b in zip(late, late[1:], strict=False)]
    return statistics.pstdev(d), max(b / a - 1 for a, b in zip(late, late[1:], strict=False))


# Cividis as on the dashboards: readable with red-green colour blindness.
SUCCESS_SCALE = "Cividis"
JUMP_SCALE = [[0, "#f7fbff"], [1, "#08306b"]]


def _label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def region_panel(reg: dict[str, Any]) -> dict[str, Any]:
    """A success-rate heatmap panel from the service's ``/regions`` answer."""
    z, text = [], []
    for row in reg["cells"]:
        zr: list[float | None] = []
        tr: list[str] = []
        for c in row:
            if c is None:
                zr.append(None)
                tr.append("")
                continue
            zr.append(c["success_rate"])
            lo, hi = c["wilson"]
            mix = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(c["class_mix"].items()))
            tr.append(f"{c['successes']}/{c['n']} [{lo:.2f}, {hi:.2f}]<br>{mix}")
        z.append(zr)
        text.append(tr)
    fixed = ", ".join(f"{k}={v}" for k, v in reg.get("fixed", {}).items())
    return {
        "title": "success rate over seeds" + (f" ({fixed})" if fixed else ""),
        "x": reg["x"],
        "y": reg["y"],
        "xs": [_label(v) for v in reg["x_values"]],
        "ys": [_label(v) for v in reg["y_values"]],
        "z": z,
        "text": text,
        "zmin": 0,
        "zmax": 1,
        "colorscale": SUCCESS_SCALE,
    }


def jump_panel(fluct: dict[str, dict[str, Any]]) -> dict[str, Any]:
    lrs = sorted(fluct, key=float)
    batches = sorted({b for d in fluct.values() for b in d}, key=int)
    z = [[fluct[lr].get(b, {}).get("late_dlog_std") for lr in lrs] for b in batches]
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    top = max((v for row in z for v in row if v is not None), default=1.0)
    return {
        "title": "loss jumps: std of epoch-to-epoch change of log loss, 2nd half (median over seeds)",
        "x": "learning_rate",
        "y": "batch_size",
        "xs": lrs,
        "ys": batches,
        "z": z,
        "text": text,
        "zmin": 0,
        "zmax": top,
        "colorscale": JUMP_SCALE,
    }


def _panels_html(panels: list[dict[str, Any]], title: str, plotly_js: str) -> tuple[str, int]:
    # Each panel: 60 px per heatmap row plus fixed room for its title (above) and its x-axis
    # ticks and title (below), in pixels so that short panels do not overlap their neighbours.
    above_px, below_px = 30, 80
    rows_px = [above_px + below_px + 60 * len(p["ys"]) for p in panels]
    height = 70 + 40 + sum(rows_px)
    plot_px = sum(rows_px)
    layout: dict[str, Any] = {
        "title": {"text": title},
        "width": 1100,
        "height": height,
        "margin": {"l": 90, "r": 30, "t": 70, "b": 40},
        "annotations": [],
    }
    traces = []
    top = 1.0
    for i, p in enumerate(panels):
        frac = rows_px[i] / sum(rows_px)
        lo = top - frac
        ax = "" if i == 0 else str(i + 1)
        traces.append(
            {
                "type": "heatmap",
                "x": p["xs"],
                "y": p["ys"],
                "z": p["z"],
                "text": p["text"],
                "texttemplate": "%{text}",
                "textfont": {"size": 11},
                "zmin": p["zmin"],
                "zmax": p["zmax"],
                "colorscale": p["colorscale"],
                "colorbar": {"len": frac * 0.8, "y": (top + lo) / 2, "yanchor": "middle"},
                "xaxis": "x" + ax,
                "yaxis": "y" + ax,
            }
        )
        layout["xaxis" + ax] = {"title": {"text": p["x"]}, "type": "category", "anchor": "y" + ax}
        layout["yaxis" + ax] = {
            "title": {"text": p["y"]},
            "type": "category",
            "domain": [lo + below_px / plot_px, top - above_px / plot_px],
        }
        layout["annotations"].append(
            {
                "text": p["title"],
                "x": 0.5,
                "y": top - 0.2 * above_px / plot_px,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
                "font": {"size": 13},
            }
        )
        top = lo
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><script>"
        + plotly_js
        + "</script></head><body style='margin:0;background:white'><div id='p'></div><script>"
        + f"Plotly.newPlot('p', {json.dumps(traces)}, {json.dumps(layout)}, {{staticPlot: true}});"
        + "</script></body></html>"
    )
    return html, height


def render_png(panels: list[dict[str, Any]], title: str, out: Path) -> None:
    import plotly

    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()
    html, height = _panels_html(panels, title, js)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "map.html"
        page.write_text(html)
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={out}",
                f"--window-size=1110,{height + 10}",
                "--virtual-time-budget=5000",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def example_figures(
    name: str, spec: dict[str, Any], runs: list[dict[str, Any]], dims: list[str]
) -> dict[str, Any]:
    configs = per_config(runs, dims)
    out: dict[str, Any] = {"configs": configs}
    if name in ("sensor_lstm", "cos_arccos"):
        by_lr: dict[str, dict[str, Any]] = {}
        for c in configs:
            by_lr.setdefault(f"{c['learning_rate']:g}", {})[str(c["batch_size"])] = {
                "late_dlog_std": c["median_late_dlog_std"],
                "late_max_jump": c["median_late_max_jump"],
                "late_detrended_std": c["median_late_detrended_std"],
                "late_increase_frac": c["median_late_increase_frac"],
                "median_final_accuracy": c["median_final_accuracy"],
                "classes": c["classes"],
            }
        out["fluctuation_by_lr_then_batch"] = by_lr
    if name == "sequence_rnn":
        # One stable band per setting of everything but the learning rate (beta_1, and the
        # remedies the user was offered: clipping, decay), keyed "beta_1=0.5" or
        # "beta_1=0.5, clipnorm=1, schedule=inverse_time".
        others = [d for d in dims if d != "learning_rate" and len({repr(c[d]) for c in configs}) > 1]

        def setting(c: dict[str, Any]) -> str:
            return ", ".join(f"{d}={_label(c[d])}" for d in others)

        band: dict[str, Any] = {}
        for key in sorted({setting(c) for c in configs}):
            rows = sorted((c for c in configs if setting(c) == key), key=lambda c: c["learning_rate"])
            stable = [
                c["learning_rate"]
                for c in rows
                if c["not_failed"] / c["n"] >= 0.5 and not c["classes"].get("diverged")
            ]
            band[key] = {
                "stable_lrs": stable,
                "band_decades": (math.log10(max(stable) / min(stable)) if stable else None),
                "rises_after_min_by_lr": {
                    f"{c['learning_rate']:g}": c["classes"].get("rises_after_min", 0) for c in rows
                },
                "n_per_lr": rows[0]["n"] if rows else 0,
            }
        out["stable_band"] = band
        out["sharpness_by_setting_then_lr"] = _sharpness_figures(runs, setting)
    if name == "pixel_color":
        by_init: dict[str, list[int]] = {}
        by_data: dict[str, list[int]] = {}
        for r in runs:
            ok = int(r["run_class"] in ("converged", "noisy", "slow"))
            by_init.setdefault(str(r["init_seed"]), []).append(ok)
            by_data.setdefault(str(r["data_seed"]), []).append(ok)
        out["success_by_init_seed"] = {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_init.items())}
        out["success_by_data_seed"] = {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_data.items())}
    return out


def _sharpness_figures(runs: list[dict[str, Any]], setting: Any) -> dict[str, Any]:
    """Per setting and lr (runs with record_sharpness): median peak ratio of the compared sharpness
    to its threshold, and how many failed runs (rose, spiked, diverged) had reached it first."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in runs:
        m = r.get("metrics") or {}
        if "sharpness_peak_ratio" in m:
            lr = f"{r['params']['learning_rate']:g}"
            groups.setdefault(setting(r["params"]), {}).setdefault(lr, []).append(m)
    return {
        key: {
            lr: {
                "median_peak_ratio": _median([m["sharpness_peak_ratio"] for m in ms]),
                "failed": sum("failure_onset_epoch" in m for m in ms),
                "reached_first": sum(m.get("sharpness_reached_first") == 1.0 for m in ms),
                "runs": len(ms),
            }
            for lr, ms in sorted(by_lr.items(), key=lambda kv: float(kv[0]))
        }
        for key, by_lr in sorted(groups.items())
    }


def render_result(result: dict[str, Any]) -> None:
    """The region map PNG of an example from its stored result (docs/results/<name>.json)."""
    name = result["example"]
    panels = [region_panel(r) for r in result["regions"]]
    if "fluctuation_by_lr_then_batch" in result["figures"]:
        panels.append(jump_panel(result["figures"]["fluctuation_by_lr_then_batch"]))
    (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
    render_png(
        panels,
        f"{name}: seeds that trained stably (k/n [Wilson 95%], class mix)",
        ROOT / "docs" / "images" / f"{name}_region.png",
    )


def run_example(name: str, workers: int, keep: bool, pack_max: int | None = None) -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    tmp = Path(tempfile.mkdtemp(prefix=f"example-{name}-"))
    db_url = f"sqlite:///{tmp / 'sweeps.db'}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "serve.log").open("wb")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SWEEPS_LOG_LEVEL": "INFO"}
    if pack_max is not None:
        # Each local worker trains with one thread: a sweep of one batch size is one pack unless
        # packs are capped, and then only one of the workers has work.
        env["SWEEPS_PACK_MAX_REPLICAS"] = str(pack_max)
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--database-url",
        db_url,
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--open-writes",
    ]
    # Own process group: the server's local workers are stopped with it (a terminated
    # `sweeps serve` does not always take its workers down).
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_ready(base, proc, workers)
        client = httpx.Client(base_url=base, timeout=120)
        t0 = time.monotonic()
        r = client.post("/v1/sweeps", json=spec)
        r.raise_for_status()
        sweep = r.json()
        sid = sweep["id"]
        print(
            f"{name}: sweep {sid}, {sweep['n_configs']} configurations x {sweep['n_seeds']} seeds", flush=True
        )
        last = ""
        while True:
            s = client.get(f"/v1/sweeps/{sid}").json()
            line = f"{s['state']} {s['runs_done']}/{s['n_configs'] * s['n_seeds']} runs"
            if line != last:
                print(f"  {time.monotonic() - t0:6.0f} s  {line}", flush=True)
                last = line
            if s["state"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(5)
        wall = time.monotonic() - t0
        runs = client.get(f"/v1/sweeps/{sid}/runs", params={"limit": 500}).json()["items"]
        for run in runs:
            curve = client.get(f"/v1/runs/{run['id']}/curve").json()["points"]
            run["late_dlog_std"], run["late_max_jump"] = late_jumps([p["loss"] for p in curve])
        report = client.get(f"/v1/sweeps/{sid}/report").json()
        report_md = client.get(f"/v1/sweeps/{sid}/report", headers={"Accept": "text/markdown"}).text
        edge = client.get(f"/v1/sweeps/{sid}/edge").json()
        regions = []
        for q in REGIONS[name]:
            fixed_sets: list[dict[str, Any]] = [{}]
            for dim, values in (spec.get("space") or {}).items():
                if dim in (q["x"], q["y"]) or not isinstance(values, list) or len(values) < 2:
                    continue
                fixed_sets = [{**f, dim: v} for f in fixed_sets for v in values]
            for fixed in fixed_sets:
                reg = client.get(f"/v1/sweeps/{sid}/regions", params={**q, **fixed})
                reg.raise_for_status()
                regions.append(reg.json())
    finally:
        _stop_group(proc)
        log.close()
    dims = sorted((spec.get("space") or {}).keys())
    figures = example_figures(name, spec, runs, dims)
    result = {
        "example": name,
        "spec": spec,
        "state": s["state"],
        "wall_s": round(wall, 1),
        "workers": workers,
        "pack_max_replicas": pack_max,
        "cpu_count": os.cpu_count(),
        "figures": figures,
        "edge": edge,
        "report": report,
        "regions": regions,
    }
    (ROOT / "docs" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "results" / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    (ROOT / "docs" / "results" / f"{name}.md").write_text(report_md)
    render_result(result)
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  database and log kept in {tmp}")
    print(f"{name}: {s['state']} in {wall:.0f} s", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("examples", nargs="+", choices=sorted(REGIONS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the database and the server log")
    ap.add_argument(
        "--pack-max-replicas",
        type=int,
        default=None,
        help="cap replicas per pack (spreads one batch size over the workers)",
    )
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="only redraw docs/images/<name>_region.png from docs/results/<name>.json (no sweep)",
    )
    args = ap.parse_args()
    for name in args.examples:
        if args.render_only:
            render_result(json.loads((ROOT / "docs" / "results" / f"{name}.json").read_text()))
            continue
        run_example(
            name,
            args.workers,
            args.keep,
            PACK_MAX.get(name) if args.pack_max_replicas is None else args.pack_max_replicas,
        )


if __name__ == "__main__":
    main()
