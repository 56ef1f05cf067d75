"""``diagnose``: a sweep's numbers, remedies and sentences put together into one ``Report``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from service.core.analysis.diagnosis import evidence, questions, wording
from service.core.analysis.diagnosis.curvature import curvature_answer
from service.core.analysis.diagnosis.remedies import remedies
from service.core.analysis.diagnosis.sections import Failure, Report, SeedDependence, StableRegion
from service.core.analysis.edge import EdgeResult, Sensitivity
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.fluctuation_scaling import summarize_fluctuation
from service.core.analysis.regions import ConfigPoint

FLUCTUATION_BOOTSTRAP = 200  # resamples behind each fluctuation fit's interval


def diagnose(
    *,
    points: Sequence[ConfigPoint],
    params_swept: Mapping[str, Sequence[Any]],
    edges: Sequence[EdgeResult],
    fit: Sequence[ScalingFit],
    sensitivity: Sequence[Sensitivity],
    num_classes: int,
    lr_key: str = "learning_rate",
    init: str = "seeded",
) -> Report:
    """The sweep's diagnosis: stable region, failures, main dimension, seed luck, remedies.

    ``init`` is the spec's: with ``saved`` every seed started from the same saved weights, so the
    seed-luck sentences say that only the data order varied.
    """
    pts = [p for p in points if p.summary.n > 0]
    dims = [d for d, vals in params_swept.items() if len(vals) > 1]
    failures = _failures(pts, edges, lr_key)
    slices = {d: evidence.matched_slices(pts, d) for d in dims}  # read by effects and remedies
    effects = sorted((evidence.dimension_effect(pts, d, slices[d]) for d in dims), key=lambda e: -e.effect)
    seeds = _seed_dependence(pts)
    seed_answer = questions.seed_answer(pts, seeds.seed_components)
    if init == "saved":
        seeds = dataclasses.replace(seeds, text=f"{wording.SAVED_INIT} {seeds.text}")
        seed_answer = dataclasses.replace(seed_answer, answer=f"{wording.SAVED_INIT} {seed_answer.answer}")
    fluct = summarize_fluctuation(pts, lr_key=lr_key, n_boot=FLUCTUATION_BOOTSTRAP)
    report = Report(
        headline="",
        stable_region=tuple(_stable_region(e, lr_key) for e in edges),
        failures=failures,
        dimension_effects=tuple(effects),
        seed_dependence=seeds,
        scaling=tuple(fit),
        sensitivity=tuple(sensitivity),
        remedies=tuple(remedies(pts, dims, edges, fit, failures, seeds, lr_key, slices)),
        num_classes=num_classes,
        fluctuation=fluct,
        answers=(
            questions.fluctuation_answer(fluct, params_swept, lr_key),
            questions.rises_answer(pts, params_swept, lr_key),
            seed_answer,
            # Only for sweeps that record sharpness: other reports read as they always did.
            *((curvature,) if (curvature := curvature_answer(pts)) is not None else ()),
        ),
    )
    return dataclasses.replace(report, headline=wording.headline(pts, report, lr_key))


def _stable_region(e: EdgeResult, lr_key: str) -> StableRegion:
    stable = evidence.stable_lrs(e)
    return StableRegion(
        group=dict(e.group),
        stable_lrs=(min(stable), max(stable)) if stable else None,
        edge=e.edge,
        bracket=(e.lo, e.hi),
        censored=e.censored,
        best_lr=e.best_lr,
        text=wording.stable_region_text(e, stable, lr_key),
    )


def _failures(pts: Sequence[ConfigPoint], edges: Sequence[EdgeResult], lr_key: str) -> tuple[Failure, ...]:
    total = evidence.total_runs(pts)
    return tuple(
        Failure(
            run_class=f.run_class,
            runs=f.runs,
            share=f.runs / total if total else 0.0,
            where=f.where,
            text=wording.failure_text(f, total, lr_key),
        )
        for f in evidence.failure_placements(pts, edges)
    )


def _seed_dependence(pts: Sequence[ConfigPoint]) -> SeedDependence:
    luck = evidence.seed_luck(pts)
    if luck is None:
        return SeedDependence(n_configs=0, share_mixed=None, mean_wilson_width=None, text=wording.NO_RUNS)
    return SeedDependence(
        n_configs=luck.n_configs,
        share_mixed=luck.share_mixed,
        mean_wilson_width=luck.mean_wilson_width,
        text=wording.seed_text(luck),
        seeds_per_config=luck.seeds_per_config,
        seed_components=luck.components,
    )
