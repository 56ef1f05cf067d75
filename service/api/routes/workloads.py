"""Workloads: the built-in presets, uploaded Keras-JSON workloads, installed entry points.

``POST /v1/workloads`` takes a model as ``model.to_json()`` (a string or the
parsed object), an uploaded dataset's id, a loss and metrics. The model is
deserialised in Keras safe mode (no Lambda layers, no custom objects, nothing
that runs user code) and built once against the dataset's shapes, so a
mistake is a 422 now rather than a failed sweep later.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.api.deps import DbDep, ReaderDep, WriterDep
from service.api.schemas.common import UPLOAD_ERRORS, Page
from service.api.schemas.workloads import (
    CatalogueOut,
    EntryPointOut,
    PresetOut,
    WorkloadIn,
    WorkloadOut,
)
from service.core.errors import NotFound
from service.core.repo import datasets as datasets_repo
from service.core.repo import workloads as workloads_repo
from service.core.uploads import DatasetSummary, inspect_keras_model
from service.core.workloads import PRESETS
from workers.workloads.registry import list_entry_points

router = APIRouter(prefix="/v1/workloads", tags=["workloads"])


def _presets() -> list[PresetOut]:
    return [
        PresetOut(
            name=p.name,
            description=p.description,
            report=p.report,
            params=p.params,
            param_docs=p.param_docs,
            default_params=p.default_params,
            num_classes=p.num_classes,
            loss=p.loss,
            sweep_ref={"preset": p.name, "params": {}},
        )
        for p in PRESETS.values()
    ]


def _entry_points() -> list[EntryPointOut]:
    return [EntryPointOut(name=n, sweep_ref={"entry_point": n, "params": {}}) for n in list_entry_points()]


@router.get("", response_model=CatalogueOut, responses=UPLOAD_ERRORS)
def list_workloads(
    db: DbDep,
    _: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> CatalogueOut:
    """Everything a sweep's `workload` can name; `sweep_ref` is the block to put in the spec."""
    with db.transaction() as s:
        records, total = workloads_repo.list_workloads(s, limit=limit, offset=offset)
    return CatalogueOut(
        presets=_presets(),
        workloads=Page(items=[WorkloadOut.of(r) for r in records], total=total, limit=limit, offset=offset),
        entry_points=_entry_points(),
    )


@router.get("/presets/{name}", response_model=PresetOut, responses=UPLOAD_ERRORS)
def get_preset(name: str, _: ReaderDep) -> PresetOut:
    for p in _presets():
        if p.name == name:
            return p
    raise NotFound(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")


@router.get("/{workload_id}", response_model=WorkloadOut, responses=UPLOAD_ERRORS)
def get_workload(workload_id: int, db: DbDep, _: ReaderDep) -> WorkloadOut:
    with db.transaction() as s:
        record = workloads_repo.find_workload(s, workload_id=workload_id)
    if record is None:
        raise NotFound(
            f"workload {workload_id} does not exist; list them with GET /v1/workloads "
            "(presets are referenced by name, not id)"
        )
    return WorkloadOut.of(record)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WorkloadOut, responses=UPLOAD_ERRORS)
def create_workload(body: WorkloadIn, db: DbDep, _: WriterDep, response: Response) -> WorkloadOut:
    """Register a Keras model (safe mode, built once against the dataset) on an uploaded dataset."""
    model_json = body.model if isinstance(body.model, str) else json.dumps(body.model)
    with db.transaction() as s:
        stored = datasets_repo.get_dataset(s, dataset_id=body.dataset_id).summary
    summary = DatasetSummary(
        n_train=int(stored["n_train"]),
        n_val=int(stored["n_val"]),
        input_shape=tuple(int(d) for d in stored["input_shape"]),
        label_format=stored["label_format"],
        num_classes=int(stored["num_classes"]),
        x_dtype=str(stored["x_dtype"]),
        class_counts=stored.get("class_counts"),
    )
    loss = body.loss or summary.suggested_loss
    info = inspect_keras_model(model_json, summary, loss)
    with db.transaction() as s:
        datasets_repo.get_dataset(s, dataset_id=body.dataset_id)  # still there
        record = workloads_repo.insert_workload(
            s,
            name=body.name,
            dataset_id=body.dataset_id,
            model_json=model_json,
            loss=loss,
            metrics=list(body.metrics),
            summary=info,
        )
    out = WorkloadOut.of(record)
    response.headers["Location"] = f"/v1/workloads/{out.id}"
    return out
