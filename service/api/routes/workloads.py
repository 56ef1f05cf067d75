"""Workloads: the built-in presets, uploaded Keras models, installed entry points.

``POST /v1/workloads`` takes a model as ``model.to_json()`` (a string or the
parsed object), an uploaded dataset's id and optionally its compile
configuration (``model.get_compile_config()``), a loss and metrics;
``POST /v1/workloads/keras`` takes a ``.keras`` file (multipart) instead,
with or without weights. The model is deserialised in Keras safe mode (no
Lambda layers, no custom objects, nothing that runs user code) and built once
against the dataset's shapes, so a mistake is a 422 now rather than a failed
sweep later.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from service.api.deps import DbDep, ReaderDep, SettingsDep, WriterDep
from service.api.schemas.common import UPLOAD_ERRORS, Page
from service.api.schemas.workloads import (
    CatalogueOut,
    EntryPointOut,
    PresetOut,
    WorkloadIn,
    WorkloadOut,
)
from service.api.uploaded_files import multipart_body, read_upload_form
from service.core.errors import InvalidUpload, NotFound
from service.core.repo import workloads as workloads_repo
from service.core.workload_uploads import ModelUpload, register_keras_file, register_model
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


# `:int`: the path /v1/workloads/keras is the .keras upload (POST only), not a workload id.
@router.get("/{workload_id:int}", response_model=WorkloadOut, responses=UPLOAD_ERRORS)
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
    """Register a Keras model (safe mode, built once against the dataset) with its compile settings."""
    model_json = body.model if isinstance(body.model, str) else json.dumps(body.model)
    record = register_model(
        db,
        ModelUpload(
            name=body.name,
            dataset_id=body.dataset_id,
            model_json=model_json,
            compile_config=body.compile_config,
            loss=body.loss,
            metrics=body.metrics,
        ),
    )
    out = WorkloadOut.of(record)
    response.headers["Location"] = f"/v1/workloads/{out.id}"
    return out


_KERAS_BODY = multipart_body(
    "a .keras archive from model.save('m.keras'), with or without weights: only config.json, "
    "metadata.json and model.weights.h5, no paths, each member under the size limit and compressed "
    "at most 200:1 when over 1 MiB",
    dataset_id={"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "required": True},
    name={"type": "string", "maxLength": 200},
)


@router.post(
    "/keras",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkloadOut,
    responses=UPLOAD_ERRORS,
    openapi_extra=_KERAS_BODY,
)
async def upload_keras_workload(
    request: Request, db: DbDep, settings: SettingsDep, _: WriterDep, response: Response
) -> WorkloadOut:
    """Register a `.keras` file (its compile settings, and its weights for `init: saved`) on a dataset.

    The archive is checked before it is opened: member names, count, declared sizes and ratios.
    """
    form = await read_upload_form(
        request,
        settings.max_upload_bytes,
        what="the .keras file",
        example="curl -F file=@m.keras -F dataset_id=1 .../v1/workloads/keras",
    )
    raw_id = form.fields.get("dataset_id")
    if raw_id is None or not raw_id.strip().isdigit() or not 1 <= int(raw_id) < 2**63:
        raise InvalidUpload(
            f"the form's dataset_id {raw_id!r} is not a dataset id; upload the data with POST /v1/datasets "
            "and send its id as dataset_id"
        )
    name = (form.fields.get("name") or form.filename or "model").strip()[:200] or "model"
    data = form.data
    record = await run_in_threadpool(
        register_keras_file,
        db,
        name=name,
        dataset_id=int(raw_id),
        data=data,
        max_bytes=settings.max_upload_bytes,
    )
    out = WorkloadOut.of(record)
    response.headers["Location"] = f"/v1/workloads/{out.id}"
    return out
