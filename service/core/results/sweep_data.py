"""A sweep's finished runs summarised per configuration, with its edge, fits and diagnosis on demand.

Pure: built from rows already read (``loading`` reads them), no database here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.analysis import (
    ConfigPoint,
    EdgeResult,
    Report,
    RunSummary,
    ScalingFit,
    Sensitivity,
    available_dimensions,
    diagnose,
    edge_of_stability,
    lr_sensitivity,
    scaling_fit,
    summarize_config,
)
from service.core.records import SweepRecord
from service.core.repo.analysis_rows import AnalysisRow
from service.core.states import RunStatus
from service.core.workloads import PRESETS

LR = "learning_rate"
FINISHED = (RunStatus.COMPLETED, RunStatus.NONFINITE)  # runs that count; cancelled and errors do not
SCALING_BOOTSTRAP = 300  # resamples behind the scaling fit's interval


@dataclass
class SweepData:
    """Immutable once built, except the memo that computes each derived result once."""

    sweep: SweepRecord
    rows: list[AnalysisRow]
    points: list[ConfigPoint]
    swept: dict[str, list[Any]]
    num_classes: int
    l0: float | None
    # config id -> refinement round that added it (0 = the grid), for reporting what refinement cost.
    refine_rounds: dict[int, int] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)

    def edges(self) -> list[EdgeResult]:
        if "edges" not in self._memo:
            self._memo["edges"] = (
                edge_of_stability(self.points, lr_key=LR) if LR in all_dims(self.points) else []
            )
        return list(self._memo["edges"])

    def grid_edges(self) -> list[EdgeResult]:
        """Edges from the grid alone (refinement's configurations left out): the "before"."""
        if "grid_edges" not in self._memo:
            grid = [p for p in self.points if not self.refine_rounds.get(p.config_id)]
            self._memo["grid_edges"] = (
                edge_of_stability(grid, lr_key=LR) if len(grid) < len(self.points) else self.edges()
            )
        return list(self._memo["grid_edges"])

    def fits(self) -> list[ScalingFit]:
        if "fits" not in self._memo:
            edges = self.edges()
            ok = len({e.group.get("batch_size") for e in edges if e.edge is not None}) >= 2
            self._memo["fits"] = scaling_fit(edges, n_boot=SCALING_BOOTSTRAP) if ok else []
        return list(self._memo["fits"])

    def sensitivity(self) -> list[Sensitivity]:
        if "sens" not in self._memo:
            self._memo["sens"] = lr_sensitivity(self.points, self.l0, lr_key=LR) if self.edges() else []
        return list(self._memo["sens"])

    def report(self) -> Report:
        if "report" not in self._memo:
            self._memo["report"] = diagnose(
                points=self.points,
                params_swept=self.swept,
                edges=self.edges(),
                fit=self.fits(),
                sensitivity=self.sensitivity(),
                num_classes=self.num_classes,
                init=str(self.sweep.spec.get("init", "seeded")),
            )
        report: Report = self._memo["report"]
        return report


def all_dims(points: Sequence[ConfigPoint]) -> set[str]:
    return {k for p in points for k in p.params}


def run_summary(row: AnalysisRow) -> RunSummary:
    """The row's ``RunSummary``, equal to the one its constructor would build.

    A frozen dataclass's ``__init__`` sets each of its nine fields through
    ``object.__setattr__``; filling the new instance's ``__dict__`` in one
    update builds the same object ~3x faster (~7 ms of a cold report on a
    10,000-run sweep). RunSummary has no ``__post_init__`` nor slots
    (tests/core/results/test_results_sweep_data.py checks the two agree).
    """
    summary = _new(RunSummary)
    summary.__dict__.update(
        seed=row.seed,
        init_seed=row.init_seed,
        data_seed=row.data_seed,
        run_class=str(row.run_class),
        final_loss=row.final_loss,
        final_accuracy=row.final_accuracy,
        epochs_to_target=row.epochs_to_target,
        l0=row.l0,
        fluctuation=row.fluctuation,  # measured values only, read-only: shared, not copied
        sharpness=row.sharpness,  # measured values only, shared like fluctuation
    )
    return summary


_new = object.__new__


def build_data(
    sweep: SweepRecord,
    rows: Sequence[AnalysisRow],
    refine_rounds: Mapping[int, int] | None = None,
) -> SweepData:
    """Summarise the finished, classified runs of each configuration over its seeds."""
    runs = list(rows)
    by_config: dict[int, list[AnalysisRow]] = {}
    params: dict[int, dict[str, Any]] = {}
    for r in runs:
        params[r.config_id] = r.params
        if r.status in FINISHED and r.run_class is not None:
            by_config.setdefault(r.config_id, []).append(r)
    points = [
        ConfigPoint(config_id=cid, params=params[cid], summary=summarize_config([run_summary(r) for r in rs]))
        for cid, rs in by_config.items()
    ]
    l0s = [r.l0 for r in runs if r.l0 is not None]
    return SweepData(
        sweep=sweep,
        rows=runs,
        points=points,
        swept=available_dimensions(points) if points else {},
        num_classes=_num_classes(
            sweep, any(r.l_chance is not None and r.final_accuracy is not None for r in runs)
        ),
        l0=float(np.median(l0s)) if l0s else None,
        refine_rounds=dict(refine_rounds or {}),
    )


def _num_classes(sweep: SweepRecord, has_chance: bool) -> int:
    """Classes of the sweep's preset; for other workloads 2 when runs measured a chance loss and an
    accuracy (a classifier), else 0 (a regression's runs have a chance loss, the constant
    predictor's, and no accuracy)."""
    preset = sweep.spec.get("workload", {}).get("preset")
    if preset:
        info = PRESETS.get(preset)
        if info is not None:
            return info.num_classes
    return 2 if has_chance else 0
