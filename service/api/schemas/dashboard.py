"""What the dashboard pages poll and draw, aggregated on the server (``service.core.plots``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.api.schemas.analysis import BracketOut, CellStatsOut, RegionOut
from service.api.schemas.sweeps import ProgressOut
from service.core.states import SweepState


class PollOut(BaseModel):
    """A compact progress record for a page that polls."""

    sweep_id: int
    state: SweepState
    runs_done: int
    runs_total: int
    configs: ProgressOut
    updated_at: str  # ISO 8601, as datetime.isoformat() writes it
    finished_at: str | None


class LossPointOut(BaseModel):
    """One learning rate of one batch size: quartiles of the finite final losses, failures apart."""

    lr: float
    n: int
    median: float | None
    q25: float | None
    q75: float | None
    failed: int
    failed_nonfinite: int
    failed_median: float | None


class LossSeriesOut(BaseModel):
    batch_size: Any
    points: list[LossPointOut]


class LossVsLrOut(BaseModel):
    pooled_over: list[str]
    l0: float | None
    series: list[LossSeriesOut]


class EdgePointOut(BaseModel):
    batch_size: Any
    slice: dict[str, Any]
    edge: float | None
    lo: float | None
    hi: float | None
    censored: str | None
    best_lr: float | None


class FitLineOut(BaseModel):
    optimizer: str | None
    slope: float | None
    ci: list[float] | None
    intercept: float | None
    expected: float | None
    n_points: int
    reference: str


class EdgePlotOut(BaseModel):
    edges: list[EdgePointOut]
    fits: list[FitLineOut]


class FluctuationSeriesOut(BaseModel):
    """Fluctuation against batch size in one group (a learning rate), with the fitted line."""

    group: dict[str, Any]
    x: list[float]
    median: list[float]
    q25: list[float]
    q75: list[float]
    jump: list[float | None]
    n: list[int]
    slope: float | None
    ci: list[float] | None
    intercept: float
    expected: float | None


class FluctuationPlotOut(BaseModel):
    measured: bool
    series: list[FluctuationSeriesOut]


class PlotsOut(BaseModel):
    sweep_id: int
    state: SweepState
    runs_done: int
    dims: dict[str, list[Any]]
    loss_unit: str
    loss_vs_lr: LossVsLrOut | None
    edge: EdgePlotOut
    headline: str
    report_html: str
    fluctuation: FluctuationPlotOut | None = None


class HeatCellOut(CellStatsOut):
    """A region cell with its configurations counted; ``config_id`` names the one when it holds one."""

    n_configs: int
    config_id: int | None


class HeatEdgeOut(BracketOut):
    group: dict[str, Any]


class HeatmapOut(RegionOut):
    cells: list[list[HeatCellOut | None]]  # type: ignore[assignment]
    edges: list[HeatEdgeOut]  # type: ignore[assignment]


class QuartilesOut(BaseModel):
    median: list[float | None]
    q25: list[float | None]
    q75: list[float | None]


class SeedBandOut(BaseModel):
    epochs: list[int]
    n_stable: int
    loss: QuartilesOut
    accuracy: QuartilesOut
    running_loss: QuartilesOut | None = None  # the running-mean loss Keras displays


class SeedLineOut(BaseModel):
    run_id: int
    seed: int
    run_class: str | None
    epochs: list[int]
    loss: list[float | None]
    accuracy: list[float | None]


class BandOut(BaseModel):
    """Seed curves of one configuration: the stable seeds as a band, each failed seed apart."""

    sweep_id: int
    config_id: int
    band: SeedBandOut
    stable: list[SeedLineOut]
    failed: list[SeedLineOut]
    n_failed: int
    n_unfinished: int
