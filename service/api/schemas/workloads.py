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
    compile: dict[str, Any] | None = Field(
        description="what every sweep on it uses for each dimension its space does not vary: `params` "
        "(the optimizer and all its settings, with the spec's names), `loss`, `loss_spec`, "
        "`from_logits`, `metrics`"
    )
    task: Literal["binary", "multiclass", "regression"]
    has_weights: bool = Field(description="uploaded as .keras with weights: sweeps may use `init: saved`")

    @classmethod
    def of(cls, r: WorkloadRecord) -> WorkloadOut:
        return cls(
            **asdict(r), sweep_ref={"id": r.id}, compile=r.compile, task=r.task, has_weights=r.has_weights
        )


class EntryPointOut(BaseModel):
    name: str
    kind: Literal["entry_point"] = "entry_point"
    sweep_ref: dict[str, Any]


class CatalogueOut(BaseModel):
    presets: list[PresetOut]
    workloads: Page[WorkloadOut]
    # Installed on the API's machine; workers need the same package installed.
    entry_points: list[EntryPointOut]


class WorkloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    dataset_id: int = Field(ge=1, le=2**63 - 1)
    model: str | dict[str, Any] = Field(
        description="the output of model.to_json(), as a string or parsed JSON"
    )
    compile_config: dict[str, Any] | None = Field(
        None,
        description="model.get_compile_config() of the compiled model: its optimizer (Adam, AdamW, RMSprop "
        "or SGD) with all its settings, loss and metrics. Every dimension a sweep does not vary takes "
        "these values; without it the optimizer is Adam with Keras' defaults",
    )
    loss: str | dict[str, Any] | None = Field(
        None,
        description="a built-in Keras loss by name (e.g. mean_squared_error, mse, binary_crossentropy, "
        "huber, kl_divergence, hinge) or serialized (keras.losses.serialize(loss)); defaults to the "
        "compiled loss, else to the one the dataset's labels call for",
    )
    metrics: list[str] | None = Field(
        None,
        max_length=8,
        description="built-in Keras metric names; defaults to the compiled ones, else accuracy",
    )
