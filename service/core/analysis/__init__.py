"""Analysis of sweeps: pure numpy functions over stored curves.

Definitions: docs/architecture.md, "Run classes" and the sections after it.

No database, HTTP or TensorFlow here: workers classify a run as it finishes
(``classify_run``), the API aggregates per configuration (``summarize_config``)
and per region (``region_matrix``, ``edge_of_stability``, ``diagnose``) on read.
"""

from service.core.analysis.classify import RunCurve, RunVerdict, classify_run, label_prior
from service.core.analysis.diagnosis import Remedy, Report, diagnose, report_to_markdown
from service.core.analysis.edge import (
    EdgeCell,
    EdgeResult,
    Sensitivity,
    bracket_width,
    edge_of_stability,
    gradient_noise_scale,
    lr_sensitivity,
    refine_candidates,
)
from service.core.analysis.edge_scaling import EXPECTED_EXPONENT, ScalingFit, scaling_fit
from service.core.analysis.regions import (
    BetaPlane,
    Cell,
    ConfigPoint,
    Region,
    available_dimensions,
    beta_plane,
    region_matrix,
)
from service.core.analysis.seeds import (
    ConfigSummary,
    RunSummary,
    Spread,
    by_seed_component,
    pool,
    seed_component_effects,
    summarize_config,
    wilson_interval,
)
from service.core.analysis.thresholds import (
    CONVERGED,
    DIVERGED,
    FAILURE_CLASSES,
    FLAG_NONFINITE,
    FLAG_OVERFITTING,
    FLAG_PLATEAUED,
    FLAG_REGRESSING,
    NOISY,
    RISES_AFTER_MIN,
    RUN_CLASSES,
    SLOW,
    STUCK_AT_CHANCE,
    SUCCESS_CLASSES,
    Thresholds,
)

__all__ = [
    "CONVERGED",
    "DIVERGED",
    "EXPECTED_EXPONENT",
    "FAILURE_CLASSES",
    "FLAG_NONFINITE",
    "FLAG_OVERFITTING",
    "FLAG_PLATEAUED",
    "FLAG_REGRESSING",
    "NOISY",
    "RISES_AFTER_MIN",
    "RUN_CLASSES",
    "SLOW",
    "STUCK_AT_CHANCE",
    "SUCCESS_CLASSES",
    "BetaPlane",
    "Cell",
    "ConfigPoint",
    "ConfigSummary",
    "EdgeCell",
    "EdgeResult",
    "Region",
    "Remedy",
    "Report",
    "RunCurve",
    "RunSummary",
    "RunVerdict",
    "ScalingFit",
    "Sensitivity",
    "Spread",
    "Thresholds",
    "available_dimensions",
    "beta_plane",
    "bracket_width",
    "by_seed_component",
    "classify_run",
    "diagnose",
    "edge_of_stability",
    "gradient_noise_scale",
    "label_prior",
    "lr_sensitivity",
    "pool",
    "refine_candidates",
    "region_matrix",
    "report_to_markdown",
    "scaling_fit",
    "seed_component_effects",
    "summarize_config",
    "wilson_interval",
]
