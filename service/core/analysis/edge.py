"""Edge of stability per batch size, its scaling exponent, and lr sensitivity.

Definitions and sources: docs/architecture.md, "Per configuration and per region".

A learning rate is *stable* for a configuration when at least ``min_success``
(0.5) of its seeds trained stably and none diverged. Walking the lr grid
upwards from the smallest stable lr, the edge sits between the last stable
lr and the first unstable one; it is reported as their geometric mean (lr
grids are log-spaced) with the bracket. A stable lr above the first unstable
one is reported (``stable_again_above``) but does not move the edge: the edge
is where training first breaks, not the largest lr that happened to work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from service.core.analysis.regions import ConfigPoint, matches, sort_key
from service.core.analysis.seeds import ConfigSummary, RunSummary, pool
from service.core.analysis.thresholds import DIVERGED

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def censored_bound(censored: str | None, lo: float | None, hi: float | None) -> float | None:
    """The bound of a censored edge: above ``lo`` (the largest lr tried, stable) or below ``hi``
    (the smallest tried, unstable); None for a bracketed edge."""
    if censored == "above":
        return lo
    if censored == "below":
        return hi
    return None


@dataclass(frozen=True)
class EdgeCell:
    """One learning rate of a group: its seeds pooled over the configurations there."""

    lr: float
    config_ids: tuple[int, ...]
    n: int
    successes: int
    success_rate: float
    any_diverged: bool
    stable: bool
    median_final_loss: float | None
    dominant_class: str | None
    summary: ConfigSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "config_ids": list(self.config_ids),
            "n": self.n,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "any_diverged": self.any_diverged,
            "stable": self.stable,
            "median_final_loss": self.median_final_loss,
            "dominant_class": self.dominant_class,
        }


@dataclass(frozen=True)
class EdgeResult:
    """Edge of stability of one group (batch size and slice of the other dimensions).

    ``censored`` is None for a bracketed edge, ``"above"`` when every lr above
    the smallest stable one is stable (the edge is >= ``lo``; ``edge`` is that
    lower bound), ``"below"`` when no lr is stable (the edge is < ``hi``, the
    smallest lr tried; ``edge`` is None).
    """

    group: dict[str, Any]
    lr_key: str
    min_success: float
    cells: tuple[EdgeCell, ...]
    edge: float | None
    lo: float | None
    hi: float | None
    censored: str | None
    stable_again_above: bool
    best_lr: float | None
    best_loss: float | None

    @property
    def bracket_width(self) -> float | None:
        return bracket_width(self.lo, self.hi)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": dict(self.group),
            # A censored edge is no number: null, with the bound and its side (``censored``).
            "edge": None if self.censored else self.edge,
            "bracket": [self.lo, self.hi],
            "bracket_width": self.bracket_width,
            "censored": self.censored,
            "bound": censored_bound(self.censored, self.lo, self.hi),
            "stable_again_above": self.stable_again_above,
            "best_lr": self.best_lr,
            "best_loss": self.best_loss,
            "min_success": self.min_success,
            "cells": [c.to_dict() for c in self.cells],
        }


@dataclass(frozen=True)
class Sensitivity:
    """Wortsman et al. 2023 lr sensitivity of one group: E_lr[min(L(lr), l0) - min_lr L]."""

    group: dict[str, Any]
    sensitivity: float | None
    relative: float | None  # sensitivity / (l0 - min_lr L): 0 = insensitive, 1 = only one lr learns
    l0: float | None
    best_loss: float | None
    n_lrs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": dict(self.group),
            "sensitivity": self.sensitivity,
            "relative": self.relative,
            "l0": self.l0,
            "best_loss": self.best_loss,
            "n_lrs": self.n_lrs,
        }


def bracket_width(lo: float | None, hi: float | None) -> float | None:
    """Relative width hi/lo - 1 of an edge bracket (None unless both ends are known)."""
    if lo is None or hi is None or lo <= 0:
        return None
    return hi / lo - 1.0


def edge_of_stability(
    points: Sequence[ConfigPoint],
    *,
    lr_key: str = "learning_rate",
    group_by: Sequence[str] = ("batch_size",),
    fixed: Mapping[str, Any] | None = None,
    min_success: float = 0.5,
) -> list[EdgeResult]:
    """Edges per group: every combination of the parameters other than ``lr_key``.

    ``group_by`` orders the groups (batch size first by default); every other
    swept dimension also splits groups (a beta_1 slice has its own edge).
    Configurations without seeds yet (n == 0) are not evidence and are skipped.
    """
    fixed = dict(fixed or {})
    groups = _groups(points, lr_key, fixed)
    out = [_edge(group, by_lr, lr_key, min_success) for group, by_lr in groups.items()]
    out.sort(key=lambda e: _group_order(e.group, group_by))
    return out


def lr_sensitivity(
    points: Sequence[ConfigPoint],
    l0: float | None = None,
    *,
    lr_key: str = "learning_rate",
    group_by: Sequence[str] = ("batch_size",),
    fixed: Mapping[str, Any] | None = None,
) -> list[Sensitivity]:
    """LR sensitivity per group (Wortsman et al. 2023, "Small-scale proxies ...").

    L(lr) is the median over seeds of the final loss capped at l0 (a diverged
    or non-finite seed counts as l0: it learned nothing). ``l0`` defaults to
    the median initial loss of the group's runs.
    """
    out: list[Sensitivity] = []
    for group, by_lr in _groups(points, lr_key, dict(fixed or {})).items():
        runs = [r for members in by_lr.values() for p in members for r in p.summary.runs]
        ref = l0 if l0 is not None else _median([r.l0 for r in runs])
        losses = []
        for members in by_lr.values():
            rs = [r for p in members for r in p.summary.runs]
            if rs and ref is not None:
                losses.append(_median([_capped(r, ref) for r in rs]))
        vals = [v for v in losses if v is not None]
        if not vals or ref is None:
            out.append(Sensitivity(dict(group), None, None, ref, None, len(by_lr)))
            continue
        best = min(vals)
        sens = math.fsum(min(v, ref) - best for v in vals) / len(vals)
        rel = sens / (ref - best) if ref > best else None
        out.append(Sensitivity(dict(group), sens, rel, ref, best, len(vals)))
    out.sort(key=lambda s: _group_order(s.group, group_by))
    return out


def refine_candidates(
    edges: Sequence[EdgeResult], *, lr_key: str | None = None, digits: int = 6
) -> list[dict[str, Any]]:
    """Next bisection point of every bracketed edge (``refine_edge: {rounds: K}``).

    The new lr is the geometric mean of the bracket, rounded to ``digits``
    significant digits like the spec's grids; once training it the bracket's
    log-width halves. Brackets too narrow to split at that precision are done.
    """
    out = []
    for e in edges:
        if e.censored is not None or e.lo is None or e.hi is None:
            continue
        mid = float(f"{math.sqrt(e.lo * e.hi):.{digits}g}")
        if not e.lo < mid < e.hi:
            continue
        out.append(
            {
                "params": {**e.group, (lr_key or e.lr_key): mid},
                "bracket": [e.lo, e.hi],
                "bracket_width": bracket_width(e.lo, e.hi),
                "width_after": max(bracket_width(e.lo, mid) or 0.0, bracket_width(mid, e.hi) or 0.0),
            }
        )
    return out


def gradient_noise_scale(b_small: float, g2_small: float, b_big: float, g2_big: float) -> float | None:
    """B_simple = tr(Sigma) / |G|^2 from mean squared gradient norms at two batch sizes.

    McCandlish et al. 2018, "An Empirical Model of Large-Batch Training",
    appendix A.1: E|G_B|^2 = |G|^2 + tr(Sigma)/B, solved from two batch sizes.
    None when the estimates are not positive (too few steps averaged).
    """
    if not (0 < b_small < b_big):
        raise ValueError("need 0 < b_small < b_big")
    g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small)
    trace = (g2_small - g2_big) / (1.0 / b_small - 1.0 / b_big)
    if g2 <= 0 or trace <= 0:
        return None
    return trace / g2


# ---- internals ---------------------------------------------------------------------------


def _groups(
    points: Sequence[ConfigPoint], lr_key: str, fixed: Mapping[str, Any]
) -> dict[tuple[tuple[str, Any], ...], dict[float, list[ConfigPoint]]]:
    groups: dict[tuple[tuple[str, Any], ...], dict[float, list[ConfigPoint]]] = {}
    for p in points:
        lr = p.params.get(lr_key)
        if not _is_pos(lr) or p.summary.n == 0 or not matches(p.params, fixed):
            continue
        key = tuple(sorted((k, v) for k, v in p.params.items() if k != lr_key))
        groups.setdefault(key, {}).setdefault(float(lr), []).append(p)
    return groups


def _edge(
    group: tuple[tuple[str, Any], ...], by_lr: dict[float, list[ConfigPoint]], lr_key: str, min_success: float
) -> EdgeResult:
    cells = []
    for lr in sorted(by_lr):
        members = by_lr[lr]
        s = members[0].summary if len(members) == 1 else pool(m.summary for m in members)
        rate = s.successes / s.n
        cells.append(
            EdgeCell(
                lr=lr,
                config_ids=tuple(sorted(m.config_id for m in members)),
                n=s.n,
                successes=s.successes,
                success_rate=rate,
                any_diverged=s.any_diverged,
                stable=rate >= min_success and not s.any_diverged,
                median_final_loss=s.final_loss.median,
                dominant_class=s.dominant_class,
                summary=s,
            )
        )
    lrs = [c.lr for c in cells]
    j, u = _walk([c.stable for c in cells])
    if j is None:
        edge, lo, hi, censored = None, None, lrs[0], "below"
    elif u is None:
        edge, lo, hi, censored = lrs[j], lrs[j], None, "above"
    else:
        edge, lo, hi, censored = math.sqrt(lrs[j] * lrs[u]), lrs[j], lrs[u], None
    again = u is not None and any(c.stable for c in cells[u:])
    stable_losses = [
        (c.median_final_loss, c.lr) for c in cells if c.stable and c.median_final_loss is not None
    ]
    best_loss, best_lr = min(stable_losses) if stable_losses else (None, None)
    return EdgeResult(
        group=dict(group),
        lr_key=lr_key,
        min_success=min_success,
        cells=tuple(cells),
        edge=edge,
        lo=lo,
        hi=hi,
        censored=censored,
        stable_again_above=again,
        best_lr=best_lr,
        best_loss=best_loss,
    )


def _walk(stable: Sequence[bool]) -> tuple[int | None, int | None]:
    """(last stable index before the first unstable one above the first stable, that unstable index)."""
    first = next((i for i, s in enumerate(stable) if s), None)
    if first is None:
        return None, None
    u = next((i for i in range(first + 1, len(stable)) if not stable[i]), None)
    return (len(stable) - 1 if u is None else u - 1), u


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _is_pos(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _capped(r: RunSummary, l0: float) -> float:
    if r.run_class == DIVERGED or r.final_loss is None or not math.isfinite(r.final_loss):
        return l0
    return min(r.final_loss, l0)


def _median(vals: Sequence[float | None]) -> float | None:
    xs = sorted(v for v in vals if v is not None and math.isfinite(v))
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def _group_order(group: Mapping[str, Any], group_by: Sequence[str]) -> tuple[Any, ...]:
    first = tuple(sort_key(group.get(k)) for k in group_by)
    rest = tuple((k, sort_key(v)) for k, v in sorted(group.items()) if k not in group_by)
    return first + rest
