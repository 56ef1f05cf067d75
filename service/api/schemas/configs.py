"""A configuration of a sweep: where it is in the queue, and what its seeds did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.api.schemas.analysis import SeedSummaryOut
from service.core.records import ConfigRecord
from service.core.states import ConfigState


class ConfigOut(BaseModel):
    """One configuration: its queue record (state, attempts, Optuna trial) and its seeds aggregated."""

    config_id: int
    sweep_id: int
    params: dict[str, Any]
    state: ConfigState
    trial_id: int | None = Field(description="the Optuna trial of the latest attempt")
    trial_number: int | None = Field(description="that trial's number in the sweep's Optuna study")
    attempts: int = Field(description="how many times it was retried after a lost worker")
    refine_round: int = Field(description="the edge-refinement round that added it (0: the grid)")
    value: float | None = Field(description="the objective reported to Optuna (median final loss)")
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    summary: SeedSummaryOut | None = Field(description="its finished seeds (None until one finishes)")
    trained_with: dict[str, Any] = Field(
        default_factory=dict,
        description="what it trained with: its params over the workload's defaults (an uploaded model's "
        "compiled optimizer with all its settings, or a preset's), Keras' defaults for the rest, "
        "and the loss",
    )

    @classmethod
    def of(
        cls, record: ConfigRecord, summary: dict[str, Any] | None, trained_with: dict[str, Any] | None = None
    ) -> ConfigOut:
        return cls.model_validate({**_fields(record, summary), "trained_with": trained_with or {}})


class ConfigDetailOut(ConfigOut):
    """One configuration, with its seeds also grouped by init seed and by data-order seed."""

    by_init_seed: dict[int, SeedSummaryOut]
    by_data_seed: dict[int, SeedSummaryOut]

    @classmethod
    def of_detail(
        cls, record: ConfigRecord, detail: dict[str, Any] | None, trained_with: dict[str, Any] | None = None
    ) -> ConfigDetailOut:
        """``detail`` as ``results.views.config_detail`` gives it (None before a seed finished)."""
        detail = detail or {}
        return cls.model_validate(
            {
                **_fields(record, detail.get("summary")),
                "trained_with": trained_with or {},
                "by_init_seed": detail.get("by_init_seed", {}),
                "by_data_seed": detail.get("by_data_seed", {}),
            }
        )


def _fields(record: ConfigRecord, summary: dict[str, Any] | None) -> dict[str, Any]:
    fields = dict(vars(record))  # shallow: asdict would deep-copy every params dict
    fields["config_id"] = fields.pop("id")
    return {**fields, "summary": summary}
