"""What the trainers take from a sweep's spec, derived once per claim.

The trainers read three things from the spec: the fixed settings of the
learning-rate schedules (``schedule_options``), whether to keep the
downsampled mini-batch losses (``record_steps``) and whether and how to
measure the sharpness (``record_sharpness``). Everything else a run needs
comes with the replicas (their hyperparameters, clipping included, and seeds)
and the claim (its number of epochs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.spec import RecordSharpness, ScheduleOptions, SweepSpec


@dataclass(frozen=True)
class TrainingPlan:
    """The spec's training settings, validated and typed."""

    schedule_options: ScheduleOptions = field(default_factory=ScheduleOptions)
    record_steps: bool = False
    # Sharpness estimates (docs/sharpness.md); None: not measured.
    sharpness: RecordSharpness | None = None

    @classmethod
    def from_spec(cls, spec: SweepSpec | Mapping[str, Any]) -> TrainingPlan:
        """The plan of a parsed spec, or of a stored spec's dict (its keys are SweepSpec's)."""
        if isinstance(spec, SweepSpec):
            return cls(
                schedule_options=spec.schedule_options,
                record_steps=spec.record_steps,
                sharpness=spec.record_sharpness,
            )
        sharpness = spec.get("record_sharpness")
        return cls(
            schedule_options=ScheduleOptions.model_validate(spec.get("schedule_options") or {}),
            record_steps=bool(spec.get("record_steps")),
            sharpness=RecordSharpness.model_validate(sharpness) if sharpness is not None else None,
        )
