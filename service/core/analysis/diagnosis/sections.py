"""The diagnosis report, one typed section per question, and its JSON form.

``to_dict`` is what the API serves and what finished sweeps store: keys, their
order and the omitted ones are part of the contract (a report stored before a
change must read the same as one computed after it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.analysis.edge import Sensitivity, censored_bound
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.fluctuation_scaling import FluctuationSummary


@dataclass(frozen=True)
class StableRegion:
    """One learning-rate group (every other swept value fixed): where it trained stably."""

    group: Mapping[str, Any]
    stable_lrs: tuple[float, float] | None  # smallest and largest stable lr; None when none was
    edge: float | None
    bracket: tuple[float | None, float | None]
    censored: str | None  # "below": nothing stable; "above": the largest lr tried was stable
    best_lr: float | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": dict(self.group),
            "stable_lrs": None if self.stable_lrs is None else list(self.stable_lrs),
            # A censored edge is no number: null, with the bound and its side (``censored``).
            "edge": None if self.censored else self.edge,
            "bracket": list(self.bracket),
            "censored": self.censored,
            "bound": censored_bound(self.censored, self.bracket[0], self.bracket[1]),
            "best_lr": self.best_lr,
            "text": self.text,
        }


@dataclass(frozen=True)
class Failure:
    """The runs of one failure class, and where they sit relative to the edge."""

    run_class: str
    runs: int
    share: float  # of all finished runs
    where: Mapping[str, int]  # "above" / "below" / "inside" / "unplaced" -> runs (zeros left out)
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_class": self.run_class,
            "runs": self.runs,
            "share": self.share,
            "where": dict(self.where),
            "text": self.text,
        }


@dataclass(frozen=True)
class DimensionEffect:
    """How much one swept dimension moves the success rate, over matched slices."""

    dim: str
    effect: float  # mean over matched slices of the range of success rates across the values
    matched_slices: int
    by_value: tuple[tuple[Any, float], ...]  # (value, pooled success rate), values in order

    def to_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "effect": self.effect,
            "matched_slices": self.matched_slices,
            "by_value": list(self.by_value),
        }


@dataclass(frozen=True)
class SeedDependence:
    """How much of the outcome is seed luck. Without finished runs only the text says anything."""

    n_configs: int
    share_mixed: float | None  # configurations with both stable and failed seeds
    mean_wilson_width: float | None
    text: str
    seeds_per_config: int | None = None  # the median
    seed_components: Mapping[str, float | None] | None = None  # "init"/"data" -> eta^2

    def to_dict(self) -> dict[str, Any]:
        if self.seeds_per_config is None:
            return {
                "n_configs": self.n_configs,
                "share_mixed": self.share_mixed,
                "mean_wilson_width": self.mean_wilson_width,
                "text": self.text,
            }
        return {
            "n_configs": self.n_configs,
            "seeds_per_config": self.seeds_per_config,
            "share_mixed": self.share_mixed,
            "mean_wilson_width": self.mean_wilson_width,
            "seed_components": dict(self.seed_components or {}),
            "text": self.text,
        }


@dataclass(frozen=True)
class Remedy:
    remedy: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"remedy": self.remedy, "evidence": self.evidence}


@dataclass(frozen=True)
class Answer:
    """One user report's question answered: the sentence, its numbers and configurations, what is missing."""

    key: str
    question: str
    answer: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    config_ids: tuple[int, ...] = ()
    missing: str | None = None  # what to add to the spec when the sweep cannot answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "question": self.question,
            "answer": self.answer,
            "evidence": dict(self.evidence),
            "config_ids": list(self.config_ids),
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Report:
    headline: str
    stable_region: tuple[StableRegion, ...]
    failures: tuple[Failure, ...]  # most runs first
    dimension_effects: tuple[DimensionEffect, ...]  # largest effect first
    seed_dependence: SeedDependence
    scaling: tuple[ScalingFit, ...]
    sensitivity: tuple[Sensitivity, ...]
    remedies: tuple[Remedy, ...]
    num_classes: int
    # Added by issue 13; a report stored before it has neither (its JSON leaves them out).
    fluctuation: FluctuationSummary | None = None
    answers: tuple[Answer, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "headline": self.headline,
            "stable_region": [s.to_dict() for s in self.stable_region],
            "failures": [f.to_dict() for f in self.failures],
            "dimension_effects": [d.to_dict() for d in self.dimension_effects],
            "seed_dependence": self.seed_dependence.to_dict(),
            "scaling": [f.to_dict() for f in self.scaling],
            "sensitivity": [s.to_dict() for s in self.sensitivity],
            "remedies": [r.to_dict() for r in self.remedies],
            "num_classes": self.num_classes,
        }
        if self.fluctuation is not None:
            out["fluctuation"] = self.fluctuation.to_dict()
            out["answers"] = [a.to_dict() for a in self.answers]
        return out
