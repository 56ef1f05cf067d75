"""The CSV export: one row per run, with its configuration, seeds, class and the metrics behind the class."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from service.core.repo.analysis_rows import RunDetails
from service.core.results.sweep_data import SweepData, all_dims
from service.core.results.training_settings import configuration_settings, settings_text

EXPORT_METRICS = (
    "l0",
    "l_chance",
    "L_min",
    "t_min",
    "L_end",
    "rebound",
    "late_increase_frac",
    "late_detrended_std",
    "late_log_slope",
    "majority_accuracy",
    "target_reached",
    "epochs_to_target",
)
_NO_DETAILS = RunDetails(None, None)


def export_rows(
    data: SweepData,
    details: Mapping[int, RunDetails] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[list[Any]]:
    """The header, then a row per run. ``details`` (``rows_repo.run_details``) supplies metrics and
    flags; ``defaults`` (``training_settings.workload_defaults``) the ``trained_with`` column."""
    dims = sorted(all_dims(data.points) | {k for r in data.rows for k in r.params})
    yield [
        "run_id",
        "config_id",
        *dims,
        "seed",
        "init_seed",
        "data_seed",
        "status",
        "run_class",
        "flags",
        "final_loss",
        "final_accuracy",
        *EXPORT_METRICS,
        "trained_with",
    ]
    details = details or {}
    for r in data.rows:
        d = details.get(r.run_id, _NO_DETAILS)
        metrics = d.metrics
        yield [
            r.run_id,
            r.config_id,
            *[r.params.get(dim, "") for dim in dims],
            r.seed,
            r.init_seed,
            r.data_seed,
            r.status,
            r.run_class or "",
            ";".join(d.flags),
            "" if r.final_loss is None else r.final_loss,
            "" if r.final_accuracy is None else r.final_accuracy,
            *["" if metrics.get(m) is None else metrics.get(m) for m in EXPORT_METRICS],
            settings_text(configuration_settings(defaults or {}, r.params)),
        ]
