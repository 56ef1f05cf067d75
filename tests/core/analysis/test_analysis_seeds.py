"""Per-configuration statistics over seeds: Wilson interval, IQM, seed components."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.analysis.seeds import (
    RunSummary,
    by_seed_component,
    dominant_class,
    pool,
    seed_component_effects,
    spread,
    summarize_config,
    wilson_interval,
)
from service.core.analysis.thresholds import RUN_CLASSES


def run(
    cls: str, seed: int = 0, *, loss: float | None = 0.1, acc: float | None = 0.9, **kw: int
) -> RunSummary:
    return RunSummary(
        seed=seed,
        init_seed=kw.get("init", seed),
        data_seed=kw.get("data", seed),
        run_class=cls,
        final_loss=loss,
        final_accuracy=acc,
        epochs_to_target=kw.get("ett"),
        l0=2.0,
    )


# Known Wilson 95% intervals (as tabulated by e.g. R binom::binom.confint(method="wilson")).
@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.27753),
        (10, 10, 0.72247, 1.0),
        (5, 10, 0.23659, 0.76341),
        (1, 3, 0.06149, 0.79234),
        (0, 1, 0.0, 0.79346),
    ],
)
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-5)


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_formula_and_contains_p(kn: tuple[int, int]) -> None:
    k, n = kn
    z = 1.959964
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(max(0.0, c - h), abs=1e-12) and hi == pytest.approx(min(1.0, c + h), abs=1e-12)
    assert 0.0 <= lo <= p <= hi <= 1.0
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_spread_iqm_is_the_25pct_trimmed_mean() -> None:
    s = spread([1.0, 2.0, 3.0, 4.0, 100.0, None, math.nan, math.inf])
    assert s.n == 5 and s.median == 3.0 and s.q25 == 2.0 and s.q75 == 4.0 and s.iqr == 2.0
    assert s.iqm == pytest.approx(3.0)  # drops one value from each end of five
    assert spread([]).median is None and spread([None]).n == 0
    assert spread([7.0]).iqm == 7.0


def test_summarize_config() -> None:
    runs = [
        run("converged", 0, ett=5),
        run("noisy", 1, ett=9),
        run("slow", 2),
        run("diverged", 3, loss=None, acc=None),
        run("stuck_at_chance", 4, loss=0.69, acc=0.5),
    ]
    s = summarize_config(runs)
    assert s.n == 5 and s.successes == 3 and s.success_rate == pytest.approx(0.6)
    assert list(s.class_counts) == list(RUN_CLASSES) and s.class_counts["rises_after_min"] == 0
    assert s.wilson == pytest.approx(wilson_interval(3, 5))
    assert s.any_diverged and s.final_loss.n == 4 and s.median_epochs_to_target == 7.0
    assert s.reached_target == 2
    json.dumps(s.to_dict(include_runs=True), allow_nan=False)
    assert "runs" not in s.to_dict()


def test_summarize_empty_and_unknown_class() -> None:
    s = summarize_config([])
    assert s.n == 0 and s.success_rate is None and s.dominant_class is None and s.wilson == (0.0, 1.0)
    with pytest.raises(ValueError, match="unknown run classes"):
        summarize_config([run("exploded")])


def test_dominant_class_ties_show_the_failure() -> None:
    assert dominant_class({"converged": 2, "diverged": 2}) == "diverged"
    assert dominant_class({"converged": 3, "diverged": 2}) == "converged"


def test_pool_concatenates_runs() -> None:
    a = summarize_config([run("converged", 0), run("diverged", 1)])
    b = summarize_config([run("converged", 0)])
    p = pool([a, b])
    assert p.n == 3 and p.successes == 2


def test_by_seed_component_separates_init_from_data_luck() -> None:
    # Crossed 3 init x 3 data seeds; init seed 2 always fails, data order never matters.
    runs = [
        run("stuck_at_chance" if i == 2 else "converged", 3 * i + d, init=i, data=10 + d)
        for i in range(3)
        for d in range(3)
    ]
    by_init = by_seed_component(runs, "init")
    by_data = by_seed_component(runs, "data")
    assert [s.success_rate for s in by_init.values()] == [1.0, 1.0, 0.0]
    assert [s.success_rate for s in by_data.values()] == pytest.approx([2 / 3] * 3)
    eff = seed_component_effects(runs)
    assert eff["init"]["eta2"] == pytest.approx(1.0) and eff["data"]["eta2"] == pytest.approx(0.0)
    assert eff["init"]["range"] == 1.0
    with pytest.raises(ValueError):
        by_seed_component(runs, "weights")  # type: ignore[arg-type]


def test_seed_effects_uninformative_without_repeats() -> None:
    eff = seed_component_effects([run("converged", 0), run("diverged", 1)])
    assert eff["init"]["eta2"] is None
    assert np.isfinite(float(eff["init"]["groups"] or 0))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30))
def test_spread_matches_numpy(xs: list[float]) -> None:
    s = spread(xs)
    q25, med, q75 = np.percentile(xs, [25, 50, 75])
    assert (s.q25, s.median, s.q75) == pytest.approx((q25, med, q75), rel=1e-9, abs=1e-6)


def test_fluctuation_median_and_iqr_over_seeds() -> None:
    runs = [
        RunSummary(s, s, s, "noisy", fluctuation={"fluctuation": v, "jump_p90": 1.0 + v})
        for s, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5])
    ]
    s = summarize_config(runs)
    assert set(s.fluctuation) == {"fluctuation", "jump_p90"}  # unmeasured keys stay absent
    assert s.fluctuation["fluctuation"].median == pytest.approx(0.3)
    assert s.fluctuation["fluctuation"].iqr == pytest.approx(0.2)
    assert s.to_dict()["fluctuation"]["jump_p90"]["median"] == pytest.approx(1.3)
    assert summarize_config([RunSummary(0, 0, 0, "converged")]).fluctuation == {}
