"""A sweep trained by a live `sweeps serve` (API + a local worker), read back through the client:
the progress bar while it runs, then the report, configurations, runs, region map and edges."""

from __future__ import annotations

import pytest

from stability_sweeps import Client, Records
from tests.conftest import small_spec
from tests.stability_sweeps.conftest import RUN_CLASSES

pytestmark = pytest.mark.slow


def test_wait_then_read_everything_back(served: Client, capsys: pytest.CaptureFixture[str]) -> None:
    spec = small_spec(epochs=2, space={"learning_rate": [1e-2, 1e-1], "batch_size": [4]})
    sweep = served.submit(spec).wait()
    assert sweep.state == "completed" and sweep.info["runs_done"] == 4
    assert "4/4" in capsys.readouterr().err  # the bar's last state

    report = sweep.report()
    assert report.markdown.startswith("#") and report.headline and report.headline in report.markdown
    assert report._repr_markdown_() == report.markdown

    configs = sweep.configs()
    assert isinstance(configs, Records) and len(configs) == 2
    assert all(c["state"] == "completed" and c["summary"]["n"] == 2 for c in configs), configs
    runs = sweep.runs()
    assert (
        len(runs) == 4 and {r["run_class"] for r in runs} <= RUN_CLASSES and all(r["run_class"] for r in runs)
    )
    assert len(sweep.runs(param="learning_rate=1e-1")) == 2
    frame = runs.to_pandas()
    assert len(frame) == 4 and "params.learning_rate" in frame.columns and "run_class" in frame.columns

    cells = sweep.regions(x="learning_rate", y="batch_size", metric="final_loss")
    assert cells.meta["x_values"] == [1e-2, 1e-1] and cells.meta["metric"] == "final_loss"
    assert sorted(c["x"] for c in cells) == [1e-2, 1e-1] and all(c["n"] == 2 for c in cells)
    assert all(c["value"] == c["median_final_loss"] for c in cells)

    edges = sweep.edge()
    assert len(edges) == 1 and edges[0]["group"]["batch_size"] == 4 and "scaling" in edges.meta
