"""The workload catalogue: presets, uploaded Keras-JSON workloads, installed entry points."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas.common import Page
from service.core.repo.workloads import WorkloadRecord


class PresetOut(BaseModel):
    name: str
    kind: Literal["preset"] = "preset"
    description: str
    report: str | None
    params: dict[str, Any]
    param_docs: dict[str, str]
    default_params: dict[str, Any]
    num_classes: int
    loss: str
    sweep_ref: dict[str, Any]


class WorkloadOut(BaseModel):
    id: int
    kind: Literal["uploaded"] = "uploaded"
    name: str
    dataset_id: int
    loss: str
    metrics: list[str]
    summary: dict[str, Any]
    created_at: datetime
    sweep_ref: dict[str, Any]

    @classmethod
    def of(cls, r: WorkloadRecord) -> WorkloadOut:
        return cls(**asdict(r), sweep_ref={"id": r.id})


class EntryPointOut(BaseModel):
    name: str
    kind: Literal["entry_point"] = "entry_point"
    sweep_ref: dict[str, Any]


class CatalogueOut(BaseModel):
    presets: list[PresetOut]
    workloads: Page[WorkloadOut]
    # Installed on the API's machine; workers need the same package installed.
    entry_points: list[EntryPointOut]


# The Keras metrics a workload may name.
Metric = Literal["accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "mse", "mae"]


class WorkloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    dataset_id: int = Field(ge=1, le=2**63 - 1)
    model: str | dict[str, Any] = Field(
        description="the output of model.to_json(), as a string or parsed JSON"
    )
    loss: Literal["categorical_crossentropy", "sparse_categorical_crossentropy", "mse"] | None = Field(
        None, description="defaults to the one the dataset's labels call for"
    )
    metrics: list[Metric] = Field(default_factory=lambda: list[Metric](["accuracy"]), max_length=8)
