"""service/core/analysis/diagnosis/wording.py: each sentence of the diagnosis, the headline and the
Markdown, from hand-built sections (the whole report's wording is pinned by test_diagnosis_golden.py)."""

from __future__ import annotations

from typing import Any

from service.core.analysis.diagnosis.evidence import FailurePlacement, SeedLuck
from service.core.analysis.diagnosis.sections import (
    DimensionEffect,
    Failure,
    Remedy,
    Report,
    SeedDependence,
    StableRegion,
)
from service.core.analysis.diagnosis.wording import (
    NO_RUNS,
    failure_text,
    fmt,
    group_text,
    headline,
    pct,
    report_to_markdown,
    scaling_text,
    seed_text,
    stable_region_text,
)
from service.core.analysis.edge import EdgeResult
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config


def _edge(lo: float | None, hi: float | None, censored: str | None, *, again: bool = False) -> EdgeResult:
    edge = None if censored == "below" else lo if censored == "above" else 3e-3
    return EdgeResult({}, "learning_rate", 0.5, (), edge, lo, hi, censored, again, None, None)


def _fit(
    slope: float | None, ci: tuple[float, float] | None, expected: float | None, opt: str | None
) -> ScalingFit:
    return ScalingFit(opt, "batch_size", 3, slope, ci, 0.0, None, None, 10, 10, expected, ())


def _region(
    group: dict[str, Any], lrs: tuple[float, float] | None, censored: str | None = None
) -> StableRegion:
    return StableRegion(group, lrs, None, (None, None), censored, None, "t")


def _report(**kw: Any) -> Report:
    base: dict[str, Any] = {
        "headline": "H",
        "stable_region": (),
        "failures": (),
        "dimension_effects": (),
        "seed_dependence": SeedDependence(0, None, None, "no seeds"),
        "scaling": (),
        "sensitivity": (),
        "remedies": (),
        "num_classes": 2,
    }
    return Report(**{**base, **kw})


def _pts(*classes: str) -> list[ConfigPoint]:
    runs = [RunSummary(s, s, s, c, final_loss=0.1) for s, c in enumerate(classes)]
    return [ConfigPoint(1, {"learning_rate": 1e-3}, summarize_config(runs))]


def test_numbers_percentages_and_groups() -> None:
    assert (fmt(0.000123456), fmt(3), fmt("adam"), fmt(True)) == ("0.000123", "3", "adam", "True")
    assert (pct(0.5), pct(0.004), pct(1.0)) == ("50%", "0%", "100%")
    assert group_text({}) == "all"
    assert group_text({"beta_1": 0.9, "batch_size": 32, "alpha": "x"}) == "batch_size=32, alpha=x, beta_1=0.9"


def test_stable_region_text_for_each_kind_of_edge() -> None:
    lr = "learning_rate"
    assert stable_region_text(_edge(None, 1e-5, "below"), [], lr) == (
        "no learning_rate tried was stable (the edge is below 1e-05, the smallest tried)"
    )
    # An edge that was not bracketed is said to be censored, never given as a number.
    assert stable_region_text(_edge(0.1, None, "above"), [1e-3, 0.1], lr) == (
        "stable from 0.001 up to the largest learning_rate tried, 0.1"
        " (the edge is above 0.1, the largest tried)"
    )
    assert stable_region_text(_edge(1e-3, 1e-2, None), [1e-4, 1e-3], lr) == (
        "stable from 0.0001 to 0.001; edge ~ 0.003 (between 0.001 and 0.01)"
    )
    assert stable_region_text(_edge(1e-3, 1e-2, None, again=True), [1e-3], lr).endswith(
        "; some larger values were stable again (seed luck or a narrow window)"
    )


def test_failure_and_seed_sentences() -> None:
    above = FailurePlacement("diverged", {"above": 3, "inside": 1})
    assert failure_text(above, 8, "lr") == "4 of 8 runs diverge (50%), mostly above the edge (larger lr)."
    below = FailurePlacement("stuck_at_chance", {"below": 2})
    assert failure_text(below, 4, "lr").endswith(
        "stay stuck at chance (50%), mostly below the stable band (smaller lr)."
    )
    luck = SeedLuck(4, 3, 1, 0.25, 0.456, {"init": 0.6, "data": 0.1})
    assert seed_text(luck) == (
        "1 of 4 configurations (25%) have both stable and failed seeds; with 3 seeds per configuration "
        "the 95% interval of a success rate is 0.46 wide on average. Within those configurations the "
        "init seed explains 60% of the outcome variance and the data-order seed 10%: the luck is mostly "
        "in the initial weights."
    )
    data_luck = SeedLuck(4, 3, 1, 0.25, 0.456, {"init": 0.1, "data": 0.6})
    assert seed_text(data_luck).endswith("mostly in the data order.")
    assert "explains" not in seed_text(SeedLuck(4, 3, 0, 0.0, 0.4, {"init": None, "data": None}))


def test_scaling_text() -> None:
    assert scaling_text(_fit(None, None, None, "sgd")) == "sgd: too few bracketed edges to fit an exponent."
    assert scaling_text(_fit(0.987, (0.5, 1.5), 1.0, None)) == (
        "edge ~ batch_size^0.99 (95% CI 0.50 to 1.50) from 3 bracketed edges; expected ~1."
    )


def test_headline_names_bands_failures_and_the_dimension_that_matters() -> None:
    assert headline([], _report(), "learning_rate") == NO_RUNS
    pts = _pts("converged", "diverged")
    assert headline(pts, _report(), "lr") == "1 of 2 runs trained stably."
    fails = (Failure("diverged", 1, 0.5, {"above": 1}, "f"),)
    effect = (DimensionEffect("batch_size", 0.5, 1, ((8, 0.0), (32, 1.0))),)
    nothing = _report(stable_region=(_region({}, None, "below"),), failures=fails, dimension_effects=effect)
    assert headline(pts, nothing, "lr") == (
        "No lr tried was stable (>= half the seeds, none diverged); failing runs mostly diverge; "
        "batch_size moves the outcome most."
    )
    regions = (
        _region({"batch_size": 8, "optimizer": "adam"}, (1e-4, 1e-3)),
        _region({"batch_size": 32, "optimizer": "adam"}, (1e-4, 1e-3)),
        _region({"batch_size": 64, "optimizer": "adam"}, (1e-3, 1e-3)),
        _region({"batch_size": 128, "optimizer": "adam"}, (1e-4, 0.1), "above"),
    )
    # Only batch_size differs between groups, so optimizer=adam is not named.
    assert headline(pts, _report(stable_region=regions), "lr") == (
        "Training is stable for lr from 0.0001 to 0.001 at batch_size=8 and batch_size=32; "
        "= 0.001 only at batch_size=64; up to 0.1 (the largest tried) at batch_size=128."
    )
    one = (_region({"batch_size": 8}, (1e-4, 1e-3)),)
    zero = (DimensionEffect("batch_size", 0.0, 1, ()),)  # no effect: not named
    assert headline(pts, _report(stable_region=one, dimension_effects=zero), "lr") == (
        "Training is stable for lr from 0.0001 to 0.001."
    )
    many = tuple(_region({"batch_size": b}, (1e-4, float(b))) for b in (1, 2, 3, 4, 5))
    assert headline(pts, _report(stable_region=many), "lr").endswith("at batch_size=3 (and 2 more).")


def test_markdown_has_every_section_and_says_when_one_is_empty() -> None:
    empty = report_to_markdown(_report(), title="Sweep 3")
    assert empty.startswith("# Sweep 3\n\n**H**\n\n## Stable region\n- No learning-rate groups to show.")
    for line in (
        "- No run failed.",
        "- Only one dimension value was tried; nothing to compare.",
        "## Seed dependence\n- no seeds",
        "- None beyond the stable region above: no tried change clearly helped.",
    ):
        assert line in empty
    assert "## Edge versus batch size" not in empty and empty.endswith("\n")
    full = report_to_markdown(
        _report(
            stable_region=(StableRegion({"batch_size": 8}, None, None, (None, None), None, None, "stable"),),
            failures=(Failure("diverged", 1, 0.5, {}, "1 of 2 runs diverge."),),
            dimension_effects=(DimensionEffect("batch_size", 0.5, 1, ((8, 0.25), (32, 0.75))),),
            scaling=(_fit(None, None, None, None),),
            remedies=(Remedy("Do it", "because"),),
        )
    )
    assert "- batch_size=8: stable" in full and "- 1 of 2 runs diverge." in full
    assert "- `batch_size`: success rate moves by 50% on average (8: 25%, 32: 75%)" in full
    assert "## Edge versus batch size\n- too few bracketed edges to fit an exponent." in full
    assert full.endswith("## Remedies the data supports\n- **Do it** — because\n")
