"""Seed aggregates, region maps, the edge of stability and the diagnosis of a sweep.

These mirror the ``to_dict`` of ``service.core.analysis`` field for field. Some
keys are present only in some answers (a region of a sweep without finished
runs has no ``pooled_over``; only the beta plane has ``reference_curve``):
they have defaults here, and the routes answer with ``exclude_unset`` so that
a key absent from the analysis stays absent from the JSON.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.core.analysis.seeds import Spread
from service.core.states import SweepState


class SeedSummaryOut(BaseModel):
    """Seeds of one configuration (or a pool of them): classes, success with a Wilson 95% interval."""

    n: int
    class_counts: dict[str, int]
    successes: int
    success_rate: float | None
    wilson: list[float]
    final_loss: Spread
    final_accuracy: Spread
    median_epochs_to_target: float | None
    reached_target: int
    any_diverged: bool
    dominant_class: str | None
    fluctuation: dict[str, Spread] = Field(
        default_factory=dict,
        description=(
            "Median, quartiles and IQR over the seeds of each fluctuation measure "
            "(fluctuation, jump_p90, running_fluctuation, spikes, largest_spike, step_loss_var; "
            "docs/architecture.md, Fluctuation); a measure no seed has is absent."
        ),
    )


# ----------------------------------------------------------------- regions


class CellStatsOut(BaseModel):
    """One cell of a region: the seeds of the configurations at (x, y), pooled."""

    x: Any
    y: Any
    n: int
    successes: int
    success_rate: float | None
    wilson: list[float]
    dominant_class: str | None
    class_mix: dict[str, int]
    any_diverged: bool
    median_final_loss: float | None
    pooled: bool
    fluctuation: dict[str, Spread] = Field(
        default_factory=dict, description="Each fluctuation measure over the cell's seeds."
    )
    value: float | None = Field(None, description="The cell's value of the region's `metric`.")


class CellOut(CellStatsOut):
    config_ids: list[int]


class EdgeCellOut(BaseModel):
    """One learning rate of an edge's group, its seeds pooled over the configurations there."""

    lr: float
    config_ids: list[int]
    n: int
    successes: int
    success_rate: float
    any_diverged: bool
    stable: bool
    median_final_loss: float | None
    dominant_class: str | None


class BracketOut(BaseModel):
    """Where an edge lies: ``bracket`` is [last stable lr, first unstable lr]; ``censored`` is None,
    "above" (every lr above the smallest stable one was stable) or "below" (none was).
    A censored edge is never a number: ``edge`` is null and ``bound`` is the lr it lies above
    (the largest tried) or below (the smallest tried)."""

    edge: float | None
    bracket: list[float | None]
    censored: str | None
    bound: float | None = Field(
        None, description="For a censored edge: the largest lr tried (above) or the smallest (below)."
    )


class EdgeOut(BracketOut):
    """Edge of stability of one group (batch size and slice of the other dimensions)."""

    group: dict[str, Any]
    bracket_width: float | None
    stable_again_above: bool
    best_lr: float | None
    best_loss: float | None
    min_success: float
    cells: list[EdgeCellOut]


class ReferenceCurveOut(BaseModel):
    label: str
    x: list[float]
    y: list[float]


class RegionOut(BaseModel):
    """Matrix over two swept dimensions: ``cells[iy][ix]``, None where nothing ran."""

    metric: str = Field("success", description="What each cell's `value` is (the map's colour).")
    x: str
    y: str
    x_values: list[Any]
    y_values: list[Any]
    cells: list[list[CellOut | None]]
    fixed: dict[str, Any]
    pooled_over: list[str] = []
    n_configs: int = 0
    edges: list[EdgeOut]
    # The beta_1 x beta_2 plane only: Zhang et al. 2022's beta_1 = sqrt(beta_2) and which cells lie below it.
    reference_curve: ReferenceCurveOut | None = None
    below_curve: list[list[bool]] = []


# ----------------------------------------------------------------- edge


class GridBracketOut(BracketOut):
    """An edge as the grid alone bracketed it, before refinement."""

    bracket_width: float | None


class RefinedEdgeOut(EdgeOut):
    trials_added_by_refinement: int
    grid: GridBracketOut | None


class ScalingOut(BaseModel):
    """Log-log exponent of the edge (and best lr) against batch size, with a bootstrap interval."""

    optimizer: str | None
    batch_key: str
    n_points: int
    slope: float | None
    ci: list[float] | None
    intercept: float | None
    best_lr_slope: float | None
    best_lr_ci: list[float] | None
    n_boot: int
    n_boot_valid: int
    expected: float | None
    points: list[dict[str, Any]]
    reference: str


class SensitivityOut(BaseModel):
    """Learning-rate sensitivity of one group (Wortsman et al. 2023)."""

    group: dict[str, Any]
    sensitivity: float | None
    relative: float | None
    l0: float | None
    best_loss: float | None
    n_lrs: int


class RefinementOut(BaseModel):
    configs_added: int
    runs_added: int
    grid_configs: int


class EdgeReportOut(BaseModel):
    sweep_id: int
    edges: list[RefinedEdgeOut]
    scaling: list[ScalingOut]
    sensitivity: list[SensitivityOut]
    refine_round: int
    refine_rounds_requested: int
    refinement: RefinementOut


# ----------------------------------------------------------------- report


class StableRegionOut(BaseModel):
    group: dict[str, Any]
    stable_lrs: list[float] | None
    edge: float | None
    bracket: list[float | None]
    censored: str | None
    bound: float | None = None  # a censored edge's bound (see BracketOut)
    best_lr: float | None
    text: str


class FailureOut(BaseModel):
    """One failure class: its runs, and where they lie (above the edge, below, inside, unplaced)."""

    run_class: str
    runs: int
    share: float
    where: dict[str, int]
    text: str


class DimensionEffectOut(BaseModel):
    """How much success changes along one dimension, at matched other settings."""

    dim: str
    effect: float
    matched_slices: int
    by_value: list[tuple[Any, float]]


class SeedDependenceOut(BaseModel):
    n_configs: int
    seeds_per_config: int = 0  # absent when nothing finished
    share_mixed: float | None
    mean_wilson_width: float | None
    seed_components: dict[str, float | None] = {}  # absent when nothing finished
    text: str


class FluctuationPointOut(BaseModel):
    x: float
    n: int
    median: float
    q25: float
    q75: float
    jump: float | None


class FluctuationFitOut(BaseModel):
    """ln fluctuation against ln batch size (or lr) in one group, with a bootstrap interval over seeds."""

    along: str
    group: dict[str, Any]
    n_points: int
    slope: float | None
    ci: list[float] | None
    n_boot: int
    n_boot_valid: int
    expected: float | None = Field(description="-0.5 along batch size: mini-batch gradient noise")
    change: float | None = Field(description="median fluctuation at the largest value / at the smallest")
    points: list[FluctuationPointOut]
    reference: str | None


class FluctuationEffectOut(BaseModel):
    dim: str
    groups: int
    change: float
    fold: float
    slope: float | None
    range: list[float]


class FluctuationSummaryOut(BaseModel):
    """How much the loss jumps between epochs, per batch size and lr, and what moves it most."""

    measured: bool
    jump_by_batch_size: list[list[Any]] = Field(
        description="[batch size, median jump factor]: 9 in 10 epoch-to-epoch loss changes are within it"
    )
    jump_by_learning_rate: list[list[Any]]
    fits: list[FluctuationFitOut]
    effects: list[FluctuationEffectOut]
    running_ratio: float | None = Field(
        description="running-mean (Keras display) fluctuation / full-set fluctuation, median over stable runs"
    )


class AnswerOut(BaseModel):
    """One user report's question, answered with the numbers and configurations behind it."""

    key: str = Field(description="fluctuation, rises or seed_luck")
    question: str
    answer: str
    evidence: dict[str, Any]
    config_ids: list[int]
    missing: str | None = Field(description="what to add to the spec when the sweep cannot answer")


class RemedyOut(BaseModel):
    remedy: str
    evidence: str


class ReportOut(BaseModel):
    """The diagnosis in plain language, with the evidence behind every sentence."""

    sweep_id: int
    state: SweepState
    headline: str
    stable_region: list[StableRegionOut]
    failures: list[FailureOut]
    dimension_effects: list[DimensionEffectOut]
    seed_dependence: SeedDependenceOut
    scaling: list[ScalingOut]
    sensitivity: list[SensitivityOut]
    remedies: list[RemedyOut]
    num_classes: int
    fluctuation: FluctuationSummaryOut | None = None
    answers: list[AnswerOut] = []
