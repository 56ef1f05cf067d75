"""Dashboard pages and their JSON on a 10,000-run sweep: milliseconds and bytes per request.

The sweep is bench_analysis.py's (1,000 configurations x 10 seeds, finished
runs written in bulk, no training). Requests go through the real ASGI app;
"cold" clears the per-sweep analysis cache first, "warm" is a page polling a
finished sweep. Bytes show that a page receives its grid, not its runs.
Prints figures; asserts nothing about time.

Usage:
    python benchmarks/bench_pages.py [--seeds 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analysis import _out, _time, build  # noqa: E402


def main() -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings, db, sid, fill_s = build(f"sqlite:///{Path(tmp) / 'bench.db'}", args.seeds)
        _out(f"sweep {sid}: {1000 * args.seeds} runs, filled in {fill_s:.1f} s")
        with TestClient(create_app(settings, db)) as client:
            cid = client.get(f"/v1/sweeps/{sid}/configs", params={"limit": 1}).json()["items"][0]["config_id"]
            pages: list[tuple[str, str, dict[str, Any]]] = [
                ("GET /sweeps (list page)", "/sweeps", {}),
                ("GET /sweeps/{id} (sweep page HTML)", f"/sweeps/{sid}", {}),
                ("GET /v1/sweeps/{id}/plots", f"/v1/sweeps/{sid}/plots", {}),
                ("GET /v1/sweeps/{id}/heatmap lr x batch (pooled)", f"/v1/sweeps/{sid}/heatmap", {}),
                (
                    "GET /v1/sweeps/{id}/heatmap beta plane slice",
                    f"/v1/sweeps/{sid}/heatmap",
                    {"x": "beta_1", "y": "beta_2", "learning_rate": "0.001", "batch_size": "8"},
                ),
                ("GET /v1/sweeps/{id}/progress", f"/v1/sweeps/{sid}/progress", {}),
                ("GET /sweeps/{id}/configs/{cid} (config page)", f"/sweeps/{sid}/configs/{cid}", {}),
            ]
            _out(f"{'request':52s} {'cold ms':>9s} {'warm ms':>9s} {'bytes':>10s}")
            for name, path, params in pages:
                cold, warm, size = [], [], 0
                for _ in range(args.repeat):
                    db.analysis_cache.clear()  # cold means nothing cached
                    cold.append(_time(lambda p=path, q=params: client.get(p, params=q)))
                    r = client.get(path, params=params)
                    assert r.status_code == 200, (name, r.status_code, r.text[:300])
                    size = len(r.content)
                    warm.append(_time(lambda p=path, q=params: client.get(p, params=q)))
                _out(f"{name:52s} {statistics.median(cold):9.1f} {statistics.median(warm):9.1f} {size:10d}")
        db.dispose()


if __name__ == "__main__":
    main()
