"""A submitted sweep: wait for it with a progress bar, then read its report, configurations, runs,
region maps and edges of stability, all through the public API."""

from __future__ import annotations

import time
from typing import Any

from stability_sweeps.progress import Bar, NoBar, progress_bar
from stability_sweeps.records import Records, Report
from stability_sweeps.transport import Transport

# The API's states in which a sweep will not change any more (service.core.states).
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})


class Sweep:
    """One sweep on one server; ``info`` is its last ``GET /v1/sweeps/{id}`` answer."""

    def __init__(self, transport: Transport, info: dict[str, Any]) -> None:
        self._t = transport
        self.info = info

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def state(self) -> str:
        return str(self.info["state"])

    @property
    def url(self) -> str:
        """The sweep's dashboard page."""
        return f"{self._t.url}/sweeps/{self.id}"

    def __repr__(self) -> str:
        return (
            f"<Sweep {self.id} {self.name!r} {self.state}: {self.info.get('runs_done', 0)}/"
            f"{self.info.get('runs_total', 0)} runs, {self.url}>"
        )

    def refresh(self) -> Sweep:
        self.info = self._t.json("GET", f"/v1/sweeps/{self.id}")
        return self

    def wait(self, progress: bool = True, *, poll_s: float = 1.0, timeout_s: float | None = None) -> Sweep:
        """Poll the sweep's progress until it is completed, failed or cancelled (a progress bar
        of runs done when ``progress``); ``TimeoutError`` after ``timeout_s``. The sweep keeps
        running on the server if this is interrupted."""
        bar: Bar = progress_bar(f"sweep {self.id}") if progress else NoBar()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while True:
                poll = self._t.json("GET", f"/v1/sweeps/{self.id}/progress")
                bar.show(int(poll["runs_done"]), int(poll["runs_total"]), str(poll["state"]))
                if poll["state"] in FINAL_STATES:
                    return self.refresh()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"sweep {self.id} is still {poll['state']} after {timeout_s:g} s "
                        f"({poll['runs_done']}/{poll['runs_total']} runs); follow it at {self.url}"
                    )
                time.sleep(poll_s)
        finally:
            bar.close()

    def cancel(self) -> Sweep:
        self.info = self._t.json("POST", f"/v1/sweeps/{self.id}/cancel")
        return self

    def report(self) -> Report:
        """The diagnosis (the three questions answered with numbers); Markdown in Jupyter."""
        path = f"/v1/sweeps/{self.id}/report"
        markdown = self._t.request("GET", path, headers={"Accept": "text/markdown"}).text
        return Report(sweep_id=self.id, markdown=markdown, data=self._t.json("GET", path))

    def configs(self, **filters: Any) -> Records:
        """Every configuration with its seeds aggregated; filters as the API takes them
        (``state``, ``run_class``, ``min_success``, ``max_success``, ``param``)."""
        return Records(self._t.pages(f"/v1/sweeps/{self.id}/configs", filters, limit=10_000))

    def runs(self, **filters: Any) -> Records:
        """Every run (one seed of one configuration); filters: ``status``, ``run_class``, ``seed``,
        ``config_id``, ``param`` (e.g. ``param="learning_rate=1e-4..1e-2"``)."""
        return Records(self._t.pages(f"/v1/sweeps/{self.id}/runs", filters, limit=1000))

    def regions(
        self, x: str = "learning_rate", y: str = "batch_size", metric: str = "success", **fixed: Any
    ) -> Records:
        """The region map over ``x`` and ``y`` as one record per cell that ran (``x``, ``y``,
        ``value`` = the metric, ``n``, ``successes``, ``dominant_class``, ...); the other swept
        dimensions are pooled unless fixed here (``beta_1=0.9``). ``meta`` holds the axes, the
        fixed values and the edges."""
        region = self._t.json(
            "GET", f"/v1/sweeps/{self.id}/regions", params={"x": x, "y": y, "metric": metric, **fixed}
        )
        cells = [cell for row in region.pop("cells") for cell in row if cell is not None]
        return Records(cells, meta=region)

    def edge(self) -> Records:
        """The edge of stability per group (batch size and slice): one record each with
        ``edge``, ``bracket``, ``best_lr``; ``meta`` holds the scaling fits and sensitivities."""
        report = self._t.json("GET", f"/v1/sweeps/{self.id}/edge")
        return Records(report.pop("edges"), meta=report)
