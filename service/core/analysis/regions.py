"""Stability regions: success-rate maps over two swept dimensions.

Definitions: docs/architecture.md, "Per configuration and per region" and "Dashboards".

A map cell holds every configuration whose two map coordinates match. When
other swept dimensions are neither mapped nor fixed, a cell holds several
configurations: their seeds are pooled (``pooled=True``) and the dimensions
pooled over are named, so the map never silently averages what it hides.
Cells are ``cells[iy][ix]`` (row = y value, column = x value), the layout of
a Plotly heatmap's ``z``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.core.analysis.seeds import ConfigSummary, Spread, pool
from service.core.errors import InvalidSpec


@dataclass(frozen=True)
class ConfigPoint:
    """One configuration: its id, swept parameters and seed summary."""

    config_id: int
    params: Mapping[str, Any]
    summary: ConfigSummary


@dataclass(frozen=True)
class Cell:
    x: Any
    y: Any
    n: int
    successes: int
    success_rate: float | None
    wilson: tuple[float, float]
    dominant_class: str | None
    class_mix: dict[str, int]
    any_diverged: bool
    median_final_loss: float | None
    config_ids: tuple[int, ...]
    pooled: bool
    # Median, quartiles and IQR over the cell's seeds of each fluctuation measure.
    fluctuation: dict[str, Spread] = field(default_factory=dict)
    # The map's colour: the cell's value of the region's metric (REGION_METRICS).
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "y": self.y,
            "n": self.n,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "wilson": list(self.wilson),
            "dominant_class": self.dominant_class,
            "class_mix": dict(self.class_mix),
            "any_diverged": self.any_diverged,
            "median_final_loss": self.median_final_loss,
            "config_ids": list(self.config_ids),
            "pooled": self.pooled,
            "fluctuation": {k: v.to_dict() for k, v in self.fluctuation.items()},
            "value": self.value,
        }


@dataclass(frozen=True)
class Region:
    x: str
    y: str
    x_values: tuple[Any, ...]
    y_values: tuple[Any, ...]
    cells: tuple[tuple[Cell | None, ...], ...]
    fixed: dict[str, Any]
    pooled_over: tuple[str, ...]
    n_configs: int
    metric: str = "success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "x": self.x,
            "y": self.y,
            "x_values": list(self.x_values),
            "y_values": list(self.y_values),
            "cells": [[None if c is None else c.to_dict() for c in row] for row in self.cells],
            "fixed": dict(self.fixed),
            "pooled_over": list(self.pooled_over),
            "n_configs": self.n_configs,
        }


@dataclass(frozen=True)
class BetaPlane:
    """Success over beta_1 (x) x beta_2 (y) with Zhang et al. 2022's curve beta_1 = sqrt(beta_2).

    Zhang et al. 2022 ("Adam can converge without any modification on update
    rules"): with large beta_2, Adam converges when beta_1 < sqrt(beta_2).
    ``below_curve[iy][ix]`` says whether the cell satisfies that condition.
    """

    region: Region
    reference_curve: tuple[tuple[float, float], ...]
    below_curve: tuple[tuple[bool, ...], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.region.to_dict(),
            "reference_curve": {
                "label": "beta_1 = sqrt(beta_2) (Zhang et al. 2022)",
                "x": [p[0] for p in self.reference_curve],
                "y": [p[1] for p in self.reference_curve],
            },
            "below_curve": [list(r) for r in self.below_curve],
        }


def _fluct(key: str) -> Callable[[ConfigSummary], float | None]:
    def median(s: ConfigSummary) -> float | None:
        sp = s.fluctuation.get(key)
        return None if sp is None else sp.median

    return median


# What a map can be coloured by (``?metric=``): each a function of the cell's pooled seeds.
REGION_METRICS: dict[str, Callable[[ConfigSummary], float | None]] = {
    "success": lambda s: s.success_rate,
    "fluctuation": _fluct("fluctuation"),
    "jump": _fluct("jump_p90"),
    "running_fluctuation": _fluct("running_fluctuation"),
    "spikes": _fluct("spikes"),
    "largest_spike": _fluct("largest_spike"),
    "step_loss_var": _fluct("step_loss_var"),
    "final_loss": lambda s: s.final_loss.median,
    "final_accuracy": lambda s: s.final_accuracy.median,
    "epochs_to_target": lambda s: s.median_epochs_to_target,
}


def check_metric(metric: str) -> None:
    """InvalidSpec naming the valid metrics when ``metric`` is not one of them."""
    if metric not in REGION_METRICS:
        raise InvalidSpec(
            f"metric: {metric!r} is not a region metric; choose one of {', '.join(REGION_METRICS)}"
        )


def sort_key(v: Any) -> tuple[int, float, str]:
    """Numbers by value, then everything else by its text (bools and None included)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return (0, float(v), "")
    return (1, 0.0, repr(v))


def matches(params: Mapping[str, Any], fixed: Mapping[str, Any]) -> bool:
    """Whether ``params`` has every fixed value (floats compared to 1e-9 relative)."""
    for k, want in fixed.items():
        if k not in params:
            return False
        have = params[k]
        if have == want:
            continue
        if _is_num(have) and _is_num(want) and math.isclose(have, want, rel_tol=1e-9):
            continue
        return False
    return True


def available_dimensions(points: Iterable[ConfigPoint]) -> dict[str, list[Any]]:
    """Dimensions with more than one distinct value, each with its sorted values."""
    seen: dict[str, set[Any]] = {}
    for p in points:
        for k, v in p.params.items():
            seen.setdefault(k, set()).add(_hashable(v))
    return {k: sorted(vs, key=sort_key) for k, vs in seen.items() if len(vs) > 1}


def region_matrix(
    points: Sequence[ConfigPoint],
    x: str,
    y: str,
    fixed: Mapping[str, Any] | None = None,
    *,
    metric: str = "success",
) -> Region:
    """Map over dimensions ``x`` and ``y`` of the points matching ``fixed``, coloured by ``metric``.

    Every cell carries its success rate and fluctuation whatever the metric;
    ``value`` is the cell's ``metric`` (REGION_METRICS). Points without ``x`` or
    ``y`` (say beta_1 for SGD configurations) are left out. Raises InvalidSpec
    when ``x``, ``y`` or a fixed key is in no point, or the metric is unknown.
    """
    check_metric(metric)
    fixed = dict(fixed or {})
    _check_keys(points, [x, y, *fixed])
    if x == y:
        raise InvalidSpec(f"a region needs two different dimensions, got {x!r} twice")
    chosen = [p for p in points if x in p.params and y in p.params and matches(p.params, fixed)]
    xs = sorted({_hashable(p.params[x]) for p in chosen}, key=sort_key)
    ys = sorted({_hashable(p.params[y]) for p in chosen}, key=sort_key)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    bins: dict[tuple[int, int], list[ConfigPoint]] = {}
    for p in chosen:
        bins.setdefault((yi[_hashable(p.params[y])], xi[_hashable(p.params[x])]), []).append(p)
    grid: list[list[Cell | None]] = [[None] * len(xs) for _ in ys]
    for (iy, ix), members in bins.items():
        grid[iy][ix] = _cell(xs[ix], ys[iy], members, REGION_METRICS[metric])
    others = available_dimensions(chosen)
    pooled_over = tuple(d for d in others if d not in (x, y) and d not in fixed)
    return Region(
        x=x,
        y=y,
        x_values=tuple(xs),
        y_values=tuple(ys),
        cells=tuple(tuple(r) for r in grid),
        fixed=fixed,
        pooled_over=pooled_over,
        n_configs=len(chosen),
        metric=metric,
    )


def beta_plane(
    points: Sequence[ConfigPoint],
    fixed: Mapping[str, Any] | None = None,
    *,
    curve_points: int = 50,
    metric: str = "success",
) -> BetaPlane:
    """The beta_1 x beta_2 region (at ``fixed`` lr, batch size, ...) with the sqrt curve."""
    region = region_matrix(points, "beta_1", "beta_2", fixed, metric=metric)
    b2 = [float(v) for v in region.y_values if _is_num(v)]
    lo, hi = (min(b2), max(b2)) if b2 else (0.0, 0.999)
    n = max(2, curve_points)
    curve = tuple((math.sqrt(b), b) for b in (lo + (hi - lo) * i / (n - 1) for i in range(n)) if b >= 0)
    below = tuple(
        tuple(
            _is_num(b1) and _is_num(b2v) and b2v >= 0 and float(b1) < math.sqrt(float(b2v))
            for b1 in region.x_values
        )
        for b2v in region.y_values
    )
    return BetaPlane(region=region, reference_curve=curve, below_curve=below)


def _cell(x: Any, y: Any, members: list[ConfigPoint], value: Callable[[ConfigSummary], float | None]) -> Cell:
    s: ConfigSummary = members[0].summary if len(members) == 1 else pool(m.summary for m in members)
    return Cell(
        x=x,
        y=y,
        n=s.n,
        successes=s.successes,
        success_rate=s.success_rate,
        wilson=s.wilson,
        dominant_class=s.dominant_class,
        class_mix={c: k for c, k in s.class_counts.items() if k},
        any_diverged=s.any_diverged,
        median_final_loss=s.final_loss.median,
        config_ids=tuple(sorted(m.config_id for m in members)),
        pooled=len(members) > 1,
        fluctuation=dict(s.fluctuation),
        value=value(s),
    )


def _check_keys(points: Sequence[ConfigPoint], keys: Iterable[str]) -> None:
    known: set[str] = set()
    for p in points:
        known.update(p.params)
    missing = [k for k in keys if k not in known]
    if missing and points:
        raise InvalidSpec(
            f"{', '.join(repr(k) for k in missing)} not swept in this sweep; "
            f"dimensions are: {', '.join(sorted(known)) or '(none)'}"
        )


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v
