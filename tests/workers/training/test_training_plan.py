"""The training plan: the spec's training settings, from a parsed spec or a stored spec's dict."""

from __future__ import annotations

import pydantic
import pytest

from service.core.spec import RecordSharpness, ScheduleOptions, SweepSpec
from tests.conftest import small_spec
from workers.training.training_plan import TrainingPlan


def test_from_a_stored_dict_and_from_the_parsed_spec_agree() -> None:
    raw = small_spec(
        schedule_options={"decay": 0.5, "plateau_monitor": "loss"},
        record_steps=True,
        record_sharpness={"every": 5, "examples": 256},
    )
    from_dict = TrainingPlan.from_spec(raw)
    from_spec = TrainingPlan.from_spec(SweepSpec.model_validate(raw))
    assert from_dict == from_spec
    assert from_dict.record_steps is True
    assert from_dict.sharpness == RecordSharpness(every=5, iterations=20, examples=256)
    assert from_dict.schedule_options == ScheduleOptions(decay=0.5, plateau_monitor="loss")


def test_defaults_when_the_spec_says_nothing() -> None:
    assert TrainingPlan.from_spec(small_spec()) == TrainingPlan()
    assert TrainingPlan.from_spec({"schedule_options": None}) == TrainingPlan()


def test_a_bad_option_fails_before_any_training() -> None:
    with pytest.raises(pydantic.ValidationError):
        TrainingPlan.from_spec({"schedule_options": {"plateau_factor": 2.0}})
    with pytest.raises(pydantic.ValidationError):
        TrainingPlan.from_spec({"record_sharpness": {"every": 0}})
