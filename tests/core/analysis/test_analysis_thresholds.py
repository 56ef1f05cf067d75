"""service/core/analysis/thresholds.py: the class names and a sweep's overrides of the thresholds."""

from __future__ import annotations

import dataclasses
import math

import pytest

from service.core.analysis.thresholds import (
    _RANGES,
    FAILURE_CLASSES,
    RUN_CLASSES,
    SUCCESS_CLASSES,
    Thresholds,
)
from service.core.errors import InvalidSpec


def test_classes_split_into_failures_and_successes_in_rule_order() -> None:
    assert RUN_CLASSES == ("diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged")
    assert FAILURE_CLASSES | SUCCESS_CLASSES == set(RUN_CLASSES)
    assert not FAILURE_CLASSES & SUCCESS_CLASSES


def test_every_threshold_has_a_valid_range_and_its_default_is_inside() -> None:
    names = {f.name for f in dataclasses.fields(Thresholds)}
    assert set(_RANGES) == names
    defaults = Thresholds().to_dict()
    assert Thresholds().with_overrides(defaults) == Thresholds()


def test_overrides_make_a_copy_with_coerced_values() -> None:
    base = Thresholds()
    t = base.with_overrides({"divergence_factor": 8, "smoothing_window": 5.0})
    assert base.divergence_factor == 4.0  # frozen: the default is untouched
    assert t.divergence_factor == 8.0 and isinstance(t.divergence_factor, float)
    assert t.smoothing_window == 5 and isinstance(t.smoothing_window, int)
    assert t.to_dict()["divergence_factor"] == 8.0 and len(t.to_dict()) == len(_RANGES)
    assert base.with_overrides({}) == base


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"divergence_factr": 3.0},
            "stability.divergence_factr is not a threshold; valid names are: chance_band",
        ),
        ({"divergence_factor": True}, "is not a finite number"),
        ({"divergence_factor": "4"}, "is not a finite number"),
        ({"divergence_factor": math.inf}, "is not a finite number"),
        ({"divergence_factor": math.nan}, "is not a finite number"),
        ({"smoothing_window": 2.5}, "must be a whole number of epochs"),
        ({"divergence_factor": 1.0}, r"outside its valid range \(1.0, inf\)"),  # open at both ends
        ({"chance_band": 1.01}, r"outside its valid range \[0.0, 1.0\]"),
        ({"late_window_min": 1}, r"outside its valid range \[2, 10000\]"),
        ({"slow_log_slope": 0.1}, r"outside its valid range \(-inf, 0.0\]"),
    ],
)
def test_bad_overrides_name_the_field_and_the_fix(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        Thresholds().with_overrides(overrides)  # type: ignore[arg-type]


def test_range_ends_follow_their_brackets() -> None:
    assert Thresholds().with_overrides({"chance_band": 0.0, "slow_log_slope": 0.0}).chance_band == 0.0
    assert Thresholds().with_overrides({"late_window_min": 2, "target_loss_frac": 1.0}).late_window_min == 2
    with pytest.raises(InvalidSpec):
        Thresholds().with_overrides({"target_loss_frac": 0.0})  # open at zero
