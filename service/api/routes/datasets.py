"""Datasets: upload an ``.npz`` (x_train, y_train, optional x_val, y_val), list, get.

The upload is a multipart form with a ``file`` field (and an optional
``name``). Starlette spools the file part to a temporary file; it is read back
in chunks with the size limit (setting ``SWEEPS_MAX_UPLOAD_BYTES``) enforced
while reading, validated (``service.core.uploads.inspect_npz``) and stored in
the database, so that every worker on every machine can load it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from service.api.deps import DbDep, ReaderDep, SettingsDep, WriterDep
from service.api.schemas.common import UPLOAD_ERRORS, Page
from service.api.schemas.datasets import DatasetOut
from service.api.uploaded_files import multipart_body, read_upload_form
from service.core.db import Database
from service.core.repo import datasets as datasets_repo
from service.core.uploads import inspect_npz

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


_UPLOAD_BODY = multipart_body(
    ".npz with x_train, y_train and optionally x_val, y_val", name={"type": "string", "maxLength": 200}
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut,
    responses=UPLOAD_ERRORS,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_dataset(
    request: Request, db: DbDep, settings: SettingsDep, _: WriterDep, response: Response
) -> DatasetOut:
    """Upload a dataset, checked at once: shapes agree, finite numbers, integer or one-hot labels."""
    form = await read_upload_form(
        request,
        settings.max_upload_bytes,
        what="the dataset",
        example="curl -F file=@data.npz -F name=mydata .../v1/datasets",
    )
    data = form.data
    label = (form.fields.get("name") or form.filename or "dataset").strip()[:200] or "dataset"
    # Validation and the insert block: keep them off the event loop.
    out = await run_in_threadpool(_store, db, data, label)
    response.headers["Location"] = f"/v1/datasets/{out.id}"
    return out


def _store(db: Database, data: bytes, label: str) -> DatasetOut:
    summary = inspect_npz(data)
    with db.transaction() as s:
        record = datasets_repo.insert_dataset(
            s,
            name=label,
            sha256=hashlib.sha256(data).hexdigest(),
            summary={
                "n_train": summary.n_train,
                "n_val": summary.n_val,
                "input_shape": list(summary.input_shape),
                "label_format": summary.label_format,
                "num_classes": summary.num_classes,
                "x_dtype": summary.x_dtype,
                "class_counts": summary.class_counts,
                "suggested_loss": summary.suggested_loss,
            },
            data=data,
        )
    return DatasetOut.of(record)


@router.get("", response_model=Page[DatasetOut], responses=UPLOAD_ERRORS)
def list_datasets(
    db: DbDep,
    _: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[DatasetOut]:
    with db.transaction() as s:
        records, total = datasets_repo.list_datasets(s, limit=limit, offset=offset)
    return Page(items=[DatasetOut.of(r) for r in records], total=total, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses=UPLOAD_ERRORS)
def get_dataset(dataset_id: int, db: DbDep, _: ReaderDep) -> DatasetOut:
    with db.transaction() as s:
        return DatasetOut.of(datasets_repo.get_dataset(s, dataset_id=dataset_id))
