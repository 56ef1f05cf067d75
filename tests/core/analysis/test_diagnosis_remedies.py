"""service/core/analysis/diagnosis/remedies.py: each remedy is offered on its evidence and only then
(test_diagnosis_report.py checks the remedies of whole synthetic sweeps through ``diagnose``)."""

from __future__ import annotations

from service.core.analysis.diagnosis.evidence import interval_width
from service.core.analysis.diagnosis.remedies import _remedy_name, remedies
from service.core.analysis.diagnosis.sections import Failure, Remedy, SeedDependence
from service.core.analysis.edge import EdgeResult
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config

NO_LUCK = SeedDependence(1, 0.0, 0.5, "t", seeds_per_config=3)


def _edge(group: dict[str, object], lo: float | None, hi: float | None, censored: str | None) -> EdgeResult:
    edge = None if censored == "below" else lo
    return EdgeResult(group, "lr", 0.5, (), edge, lo, hi, censored, False, None, None)


def _fit(ci: tuple[float, float] | None, optimizer: str | None = None) -> ScalingFit:
    return ScalingFit(optimizer, "batch_size", 3, 0.8, ci, 0.0, None, None, 10, 10, 1.0, ())


def _pt(*classes: str) -> ConfigPoint:
    runs = [RunSummary(s, s, s, c, final_loss=0.1) for s, c in enumerate(classes)]
    return ConfigPoint(1, {"lr": 1e-3}, summarize_config(runs))


def _names(found: list[Remedy]) -> list[str]:
    return [r.remedy for r in found]


def test_nothing_to_say_without_evidence() -> None:
    assert remedies([_pt("converged")], ["lr"], [], [], [], NO_LUCK, "lr") == []


def test_lower_the_learning_rate_when_runs_fail_above_a_bracketed_edge() -> None:
    edges = [_edge({"batch_size": 8}, 1e-3, 3e-3, None)]
    failures = [
        Failure("diverged", 3, 0.3, {"above": 3}, "t"),
        Failure("rises_after_min", 2, 0.2, {"above": 1, "inside": 1}, "t"),
        Failure("stuck_at_chance", 5, 0.5, {"above": 5}, "t"),  # not a sign of a too large lr
    ]
    (r,) = remedies([], ["lr"], edges, [], failures, NO_LUCK, "lr")
    assert r.remedy == "Lower the learning rate below the edge"
    assert (
        r.evidence == "4 runs diverged or rose after their minimum above the edge (batch_size=8: <= 0.001)."
    )
    only_stuck = failures[2:]
    assert remedies([], ["lr"], edges, [], only_stuck, NO_LUCK, "lr") == []
    censored = [_edge({}, 1e-3, None, "above")]
    assert remedies([], ["lr"], censored, [], failures, NO_LUCK, "lr") == []  # no bracket: no limit to name


def test_try_smaller_rates_where_nothing_was_stable() -> None:
    edges = [_edge({"batch_size": 8}, None, 1e-5, "below"), _edge({"batch_size": 32}, 1e-3, 3e-3, None)]
    (r,) = remedies([], ["lr"], edges, [], [], NO_LUCK, "lr")
    assert r == Remedy(
        "Try smaller learning rates", "for some groups no learning rate in the grid was stable: batch_size=8"
    )


def test_batch_scaling_needs_an_interval_above_zero_and_a_swept_batch() -> None:
    (r,) = remedies([], ["lr", "batch_size"], [], [_fit((0.2, 1.4), "adam")], [], NO_LUCK, "lr")
    assert r.remedy == "A larger batch tolerates a larger learning rate"
    assert r.evidence.startswith("the edge grows as batch_size^0.80 (95% CI 0.20 to 1.40) for adam;")
    assert remedies([], ["lr", "batch_size"], [], [_fit((-0.1, 1.4))], [], NO_LUCK, "lr") == []
    assert remedies([], ["lr", "batch_size"], [], [_fit(None)], [], NO_LUCK, "lr") == []
    assert remedies([], ["lr"], [], [_fit((0.2, 1.4))], [], NO_LUCK, "lr") == []


def test_more_seeds_when_a_fifth_of_configurations_are_seed_luck() -> None:
    lucky = SeedDependence(5, 0.2, 0.5, "t", seeds_per_config=4)
    (r,) = remedies([], ["lr"], [], [], [], lucky, "lr")
    assert r.remedy == "Run more seeds"
    assert f"4 seeds give a 95% interval {interval_width(4):.2f} wide" in r.evidence
    assert f"12 seeds {interval_width(12):.2f}." in r.evidence and r.evidence.startswith("20% of")
    fewer = SeedDependence(5, 0.19, 0.5, "t", seeds_per_config=4)
    unknown = SeedDependence(0, None, None, "t")
    assert remedies([], ["lr"], [], [], [], fewer, "lr") == []
    assert remedies([], ["lr"], [], [], [], unknown, "lr") == []


def test_more_epochs_when_a_quarter_of_runs_are_still_improving() -> None:
    (r,) = remedies([_pt("slow", "converged", "converged", "converged")], ["lr"], [], [], [], NO_LUCK, "lr")
    assert r.remedy.startswith("Train for more epochs") and r.evidence == (
        "1 of 4 runs were still improving when training stopped."
    )
    assert (
        remedies(
            [_pt("slow", "converged", "converged", "converged", "converged")],
            ["lr"],
            [],
            [],
            [],
            NO_LUCK,
            "lr",
        )
        == []
    )


def test_remedy_names_by_dimension() -> None:
    assert _remedy_name("clipnorm", 1.0, 0) == "Clip gradients (clipnorm=1)"
    assert _remedy_name("clipnorm", 1.0, 5.0) == "Use clipnorm=1 rather than 5"
    assert (
        _remedy_name("schedule", "cosine", "constant")
        == "Decay the learning rate (cosine schedule rather than constant)"
    )
    assert _remedy_name("schedule", "constant", "cosine") == "Use schedule=constant rather than cosine"
    assert _remedy_name("batch_size", 32, 2) == "Use a larger batch (32 rather than 2)"
    assert _remedy_name("batch_size", 2, 32) == "Use batch_size=2 rather than 32"
    assert _remedy_name("beta_1", 0.9, 0.5) == "Use beta_1=0.9 rather than 0.5"
    assert (
        _remedy_name("clipnorm", True, False) == "Use clipnorm=True rather than False"
    )  # booleans are not numbers
