"""A sweep's stored runs turned into the analysis views the API and pages show.

Loading is one lean query; the pure functions of ``service.core.analysis`` do
the rest. Results are cached per sweep and invalidated by any change in its
finished-run count, so a dashboard polling a finished 10,000-run sweep does
not recompute anything.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service.core.analysis import (
    ConfigPoint,
    EdgeResult,
    Report,
    RunSummary,
    ScalingFit,
    Sensitivity,
    available_dimensions,
    beta_plane,
    by_seed_component,
    diagnose,
    edge_of_stability,
    lr_sensitivity,
    region_matrix,
    report_to_markdown,
    scaling_fit,
    summarize_config,
)
from service.core.errors import InvalidSpec
from service.core.records import SweepRecord
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.models import Config, Run, SweepReport
from service.core.repo.runs import RunRow
from service.core.timeutil import utcnow

LR = "learning_rate"
FINISHED = ("completed", "nonfinite")


@dataclass
class SweepData:
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
                edge_of_stability(self.points, lr_key=LR) if LR in _all_dims(self.points) else []
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
            self._memo["fits"] = scaling_fit(edges, n_boot=300) if ok else []
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
            )
        report: Report = self._memo["report"]
        return report


def _all_dims(points: list[ConfigPoint]) -> set[str]:
    return {k for p in points for k in p.params}


@dataclass(frozen=True, slots=True)
class AnalysisRow:
    """One run as analysis reads it: the few metrics it aggregates are columns, the rest stays text.

    Decoding every run's metrics and flags JSON (and its configuration's
    params once per run through a join) was three quarters of a cold request
    on a 10,000-run sweep; the export is the only reader of the whole dict, and
    it decodes it on demand (``metrics``, ``flags``).
    """

    run_id: int
    config_id: int
    params: dict[str, Any]  # shared by the runs of one configuration: do not mutate
    seed: int
    init_seed: int
    data_seed: int
    status: str
    run_class: str | None
    final_loss: float | None
    final_accuracy: float | None
    l0: float | None
    l_chance: float | None
    epochs_to_target: int | None
    metrics_json: Any = None
    flags_json: Any = None

    @property
    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = _decoded(self.metrics_json, {})
        return out

    @property
    def flags(self) -> list[str]:
        out: list[str] = _decoded(self.flags_json, [])
        return out

    @classmethod
    def from_run_row(cls, r: RunRow) -> AnalysisRow:
        m = r.metrics or {}
        return cls(
            run_id=r.run_id,
            config_id=r.config_id,
            params=r.params,
            seed=r.seed,
            init_seed=r.init_seed,
            data_seed=r.data_seed,
            status=r.status,
            run_class=r.run_class,
            final_loss=r.final_loss,
            final_accuracy=r.final_accuracy,
            l0=_num(m.get("l0")),
            l_chance=_num(m.get("l_chance")),
            epochs_to_target=m.get("epochs_to_target"),
            metrics_json=m,
            flags_json=list(r.flags or []),
        )


def _decoded(raw: Any, empty: Any) -> Any:
    if raw is None:
        return empty
    return json.loads(raw) if isinstance(raw, str) else raw


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def load_rows(session: Session, *, sweep_id: int) -> list[AnalysisRow]:
    """Every run of a sweep with what analysis needs, in two lean queries (configs, then runs).

    The metrics analysis aggregates are extracted by the database (SQLite
    ``json_extract``, PostgreSQL ``->>``); the whole metrics and flags are
    left in the database (``load_details`` reads them for the export).
    """
    params = {
        int(cid): p
        for cid, p in session.execute(select(Config.id, Config.params).where(Config.sweep_id == sweep_id))
    }
    rows = session.execute(
        select(
            Run.id,
            Run.config_id,
            Run.seed,
            Run.init_seed,
            Run.data_seed,
            Run.status,
            Run.run_class,
            Run.final_loss,
            Run.final_accuracy,
            Run.metrics["l0"].as_float(),
            Run.metrics["l_chance"].as_float(),
            Run.metrics["epochs_to_target"].as_float(),
        )
        .where(Run.sweep_id == sweep_id)
        .order_by(Run.config_id, Run.seed)
    ).all()
    return [
        AnalysisRow(
            run_id=r[0],
            config_id=r[1],
            params=params[r[1]],
            seed=r[2],
            init_seed=int(r[3]),
            data_seed=int(r[4]),
            status=r[5],
            run_class=r[6],
            final_loss=r[7],
            final_accuracy=r[8],
            l0=r[9],
            l_chance=r[10],
            epochs_to_target=None if r[11] is None else int(r[11]),
        )
        for r in rows
    ]


def load_details(session: Session, *, sweep_id: int) -> dict[int, tuple[Any, Any]]:
    """run id -> (metrics, flags) as stored text, for the export (decoded by ``AnalysisRow``)."""
    rows = session.execute(
        select(Run.id, cast(Run.metrics, Text), cast(Run.flags, Text)).where(Run.sweep_id == sweep_id)
    ).all()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def _summary(row: AnalysisRow) -> RunSummary:
    return RunSummary(
        seed=row.seed,
        init_seed=row.init_seed,
        data_seed=row.data_seed,
        run_class=str(row.run_class),
        final_loss=row.final_loss,
        final_accuracy=row.final_accuracy,
        epochs_to_target=row.epochs_to_target,
        l0=row.l0,
    )


def build_data(
    sweep: SweepRecord,
    rows: Sequence[AnalysisRow | RunRow],
    refine_rounds: Mapping[int, int] | None = None,
) -> SweepData:
    runs = [r if isinstance(r, AnalysisRow) else AnalysisRow.from_run_row(r) for r in rows]
    by_config: dict[int, list[AnalysisRow]] = {}
    params: dict[int, dict[str, Any]] = {}
    for r in runs:
        params[r.config_id] = r.params
        if r.status in FINISHED and r.run_class is not None:
            by_config.setdefault(r.config_id, []).append(r)
    points = [
        ConfigPoint(config_id=cid, params=params[cid], summary=summarize_config([_summary(r) for r in rs]))
        for cid, rs in by_config.items()
    ]
    l0s = [r.l0 for r in runs if r.l0 is not None]
    num_classes = _num_classes(sweep, any(r.l_chance is not None for r in runs))
    return SweepData(
        sweep=sweep,
        rows=runs,
        points=points,
        swept=available_dimensions(points) if points else {},
        num_classes=num_classes,
        l0=float(np.median(l0s)) if l0s else None,
        refine_rounds=dict(refine_rounds or {}),
    )


def refined_configs(session: Session, *, sweep_id: int) -> dict[int, int]:
    """Configurations added by edge refinement, with their round (the grid's are left out)."""
    rows = session.execute(
        select(Config.id, Config.refine_round).where(Config.sweep_id == sweep_id, Config.refine_round > 0)
    ).all()
    return {int(cid): int(rnd) for cid, rnd in rows}


def _num_classes(sweep: SweepRecord, has_chance: bool) -> int:
    preset = sweep.spec.get("workload", {}).get("preset")
    if preset:
        from service.core.workloads import PRESETS

        info = PRESETS.get(preset)
        if info is not None:
            return info.num_classes
    return 2 if has_chance else 0


_cache: OrderedDict[tuple[int, int, str, int], SweepData] = OrderedDict()
_lock = threading.Lock()
_CACHE_SIZE = 16


def load(session: Session, *, sweep_id: int) -> SweepData:
    sweep = sweeps_repo.get_sweep(session, sweep_id=sweep_id)
    key = (sweep_id, sweep.runs_done, sweep.state, sweep.progress.total)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    data = build_data(
        sweep, load_rows(session, sweep_id=sweep_id), refined_configs(session, sweep_id=sweep_id)
    )
    with _lock:
        _cache[key] = data
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return data


# ------------------------------------------------------------------ views


def configs_view(
    data: SweepData,
    *,
    run_class: str | None = None,
    min_success: float | None = None,
    max_success: float | None = None,
    filters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for p in data.points:
        s = p.summary
        if run_class and s.class_counts.get(run_class, 0) == 0:
            continue
        rate = s.success_rate
        if (min_success is not None or max_success is not None) and rate is None:
            continue
        if min_success is not None and rate is not None and rate < min_success:
            continue
        if max_success is not None and rate is not None and rate > max_success:
            continue
        if filters and any(str(p.params.get(k)) != str(v) for k, v in filters.items()):
            continue
        out.append({"config_id": p.config_id, "params": dict(p.params), "summary": s.to_dict()})
    return out


def config_detail(data: SweepData, config_id: int) -> dict[str, Any] | None:
    for p in data.points:
        if p.config_id == config_id:
            runs = [_summary(r) for r in data.rows if r.config_id == config_id and r.run_class]
            return {
                "config_id": config_id,
                "params": dict(p.params),
                "summary": p.summary.to_dict(),
                "by_init_seed": {k: v.to_dict() for k, v in by_seed_component(runs, "init").items()},
                "by_data_seed": {k: v.to_dict() for k, v in by_seed_component(runs, "data").items()},
            }
    return None


def _check_dim(data: SweepData, name: str, what: str) -> None:
    dims = _all_dims(data.points)
    if name not in dims:
        valid = ", ".join(sorted(dims)) or "(none yet)"
        raise InvalidSpec(f"{what}: {name!r} is not a parameter of this sweep; choose one of {valid}")


def region_view(data: SweepData, *, x: str, y: str, fixed: Mapping[str, Any]) -> dict[str, Any]:
    if not data.points:
        return {
            "x": x,
            "y": y,
            "x_values": [],
            "y_values": [],
            "cells": [],
            "fixed": dict(fixed),
            "edges": [],
        }
    _check_dim(data, x, "x")
    _check_dim(data, y, "y")
    for k in fixed:
        _check_dim(data, k, "slice")
    typed = {k: _typed(data, k, v) for k, v in fixed.items()}
    if x in ("beta_1", "beta_2") and y in ("beta_1", "beta_2") and x != y:
        plane = beta_plane(data.points, fixed=typed)
        out = plane.region.to_dict()
        out["reference_curve"] = plane.to_dict().get("reference_curve")
        out["below_curve"] = plane.to_dict().get("below_curve")
    else:
        out = region_matrix(data.points, x, y, fixed=typed).to_dict()
    out["edges"] = [
        e.to_dict() for e in data.edges() if all(str(e.group.get(k)) == str(v) for k, v in typed.items())
    ]
    return out


def _typed(data: SweepData, name: str, raw: Any) -> Any:
    """Query strings are text; match them to the sweep's actual values."""
    values = data.swept.get(name) or sorted(
        {p.params.get(name) for p in data.points if name in p.params}, key=str
    )
    for v in values:
        if str(v) == str(raw):
            return v
        try:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and float(raw) == float(v):
                return v
        except (TypeError, ValueError):
            pass
    raise InvalidSpec(
        f"slice: {name}={raw!r} is not one of this sweep's values: {', '.join(map(str, values))}"
    )


def edge_view(data: SweepData) -> dict[str, Any]:
    """Edges with what refinement did to each: the grid's bracket, the configurations it added."""
    grid = {_group_key(e.group): e for e in data.grid_edges()}
    edges = []
    for e in data.edges():
        d = e.to_dict()
        added = sorted({cid for c in e.cells for cid in c.config_ids if data.refine_rounds.get(cid)})
        before = grid.get(_group_key(e.group))
        d["trials_added_by_refinement"] = len(added)
        d["grid"] = (
            None
            if before is None
            else {
                "edge": before.edge,
                "bracket": [before.lo, before.hi],
                "bracket_width": before.bracket_width,
                "censored": before.censored,
            }
        )
        edges.append(d)
    n_added = len(data.refine_rounds)
    requested = int((data.sweep.spec.get("refine_edge") or {}).get("rounds", 0))
    return {
        "sweep_id": data.sweep.id,
        "edges": edges,
        "scaling": [f.to_dict() for f in data.fits()],
        "sensitivity": [s.to_dict() for s in data.sensitivity()],
        "refine_round": data.sweep.refine_round,
        "refine_rounds_requested": requested,
        "refinement": {
            "configs_added": n_added,
            "runs_added": sum(1 for r in data.rows if r.config_id in data.refine_rounds),
            "grid_configs": len({r.config_id for r in data.rows if r.config_id not in data.refine_rounds}),
        },
    }


def _group_key(group: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in group.items()))


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


def export_rows(data: SweepData, details: Mapping[int, tuple[Any, Any]] | None = None) -> Iterator[list[Any]]:
    """The CSV: one row per run. ``details`` (from ``load_details``) supplies metrics and flags."""
    dims = sorted(_all_dims(data.points) | {k for r in data.rows for k in r.params})
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
    ]
    details = details or {}
    for r in data.rows:
        metrics_json, flags_json = details.get(r.run_id, (r.metrics_json, r.flags_json))
        metrics: dict[str, Any] = _decoded(metrics_json, {})
        flags: list[str] = _decoded(flags_json, [])
        yield [
            r.run_id,
            r.config_id,
            *[r.params.get(d, "") for d in dims],
            r.seed,
            r.init_seed,
            r.data_seed,
            r.status,
            r.run_class or "",
            ";".join(flags),
            "" if r.final_loss is None else r.final_loss,
            "" if r.final_accuracy is None else r.final_accuracy,
            *["" if metrics.get(m) is None else metrics.get(m) for m in EXPORT_METRICS],
        ]


# ------------------------------------------------------------------ stored reports


def report_json(data: SweepData) -> dict[str, Any]:
    return {"sweep_id": data.sweep.id, "state": data.sweep.state, **data.report().to_dict()}


def report_markdown(data: SweepData) -> str:
    title = f"Diagnosis of sweep {data.sweep.id}: {data.sweep.name}"
    return report_to_markdown(data.report(), title=title)


def store_report(session: Session, *, sweep_id: int) -> None:
    """Compute the edge and diagnosis of a finished sweep once and keep them (see SweepReport)."""
    data = load(session, sweep_id=sweep_id)
    session.merge(
        SweepReport(
            sweep_id=sweep_id,
            runs_done=data.sweep.runs_done,
            edge=edge_view(data),
            report=report_json(data),
            markdown=report_markdown(data),
            computed_at=utcnow(),
        )
    )


def stored_report(session: Session, *, sweep_id: int) -> SweepReport | None:
    """The stored report when it still describes the sweep (same finished-run count and state)."""
    sweep = sweeps_repo.get_sweep(session, sweep_id=sweep_id)
    row = session.get(SweepReport, sweep_id)
    if row is None or row.runs_done != sweep.runs_done or row.report.get("state") != sweep.state:
        return None
    session.expunge(row)
    return row
