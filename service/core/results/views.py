"""The analysis endpoints' bodies, shaped from ``SweepData``: configurations, one configuration,
a region map, and the edge with what refinement did to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.core.analysis import beta_plane, by_seed_component, region_matrix
from service.core.analysis.edge import censored_bound
from service.core.analysis.regions import check_metric
from service.core.errors import InvalidSpec
from service.core.results.sweep_data import SweepData, all_dims, run_summary


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
    """None when the configuration has no finished runs (or is not in the sweep)."""
    for p in data.points:
        if p.config_id == config_id:
            runs = [run_summary(r) for r in data.rows if r.config_id == config_id and r.run_class]
            return {
                "config_id": config_id,
                "params": dict(p.params),
                "summary": p.summary.to_dict(),
                "by_init_seed": {k: v.to_dict() for k, v in by_seed_component(runs, "init").items()},
                "by_data_seed": {k: v.to_dict() for k, v in by_seed_component(runs, "data").items()},
            }
    return None


def _check_dim(data: SweepData, name: str, what: str) -> None:
    dims = all_dims(data.points)
    if name not in dims:
        valid = ", ".join(sorted(dims)) or "(none yet)"
        raise InvalidSpec(f"{what}: {name!r} is not a parameter of this sweep; choose one of {valid}")


def region_view(
    data: SweepData, *, x: str, y: str, fixed: Mapping[str, Any], metric: str = "success"
) -> dict[str, Any]:
    """``metric`` (success rate by default) over ``x`` by ``y`` in the slice ``fixed``
    (the two betas get the reference curve)."""
    check_metric(metric)
    if not data.points:
        return {
            "metric": metric,
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
        plane = beta_plane(data.points, fixed=typed, metric=metric)
        out = plane.region.to_dict()
        out["reference_curve"] = plane.to_dict().get("reference_curve")
        out["below_curve"] = plane.to_dict().get("below_curve")
    else:
        out = region_matrix(data.points, x, y, fixed=typed, metric=metric).to_dict()
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
                "edge": None if before.censored else before.edge,
                "bracket": [before.lo, before.hi],
                "bracket_width": before.bracket_width,
                "censored": before.censored,
                "bound": censored_bound(before.censored, before.lo, before.hi),
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
