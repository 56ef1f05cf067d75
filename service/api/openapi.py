"""The OpenAPI document, made to say what the API really accepts and does (FastAPI's generated
document is the start): per-operation security following the access settings, path ids as
bounded integers, the body and upload limits, the error codes, and links that lead from a
created resource to what can be read of it (so stateful clients and fuzzers can follow a sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.deps import MAX_ID
from service.api.errors import ERROR_CODES, error_codes_markdown
from service.core.config import Settings

# Multipart uploads: their limit is SWEEPS_MAX_UPLOAD_BYTES; the form fields each one reads.
UPLOAD_PATHS = {"/v1/datasets": 2, "/v1/workloads/keras": 3}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def _security(doc: dict[str, Any], settings: Settings) -> None:
    """Reads need a token only with ``read_access = "token"``; writes unless writes are open.
    (deps.reader guards every GET that declares the token, deps.writer every POST and DELETE.)"""
    for _, method, op in _operations(doc):
        if "security" not in op:
            continue
        needed = settings.read_access == "token" if method == "get" else settings.require_token_for_writes
        if not needed:
            del op["security"]


def _path_ids(doc: dict[str, Any]) -> None:
    for _, _, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["in"] == "path" and param["name"].endswith("_id"):
                # The example is the first id a database hands out, so a tester's examples reach a row.
                param["schema"].update(minimum=1, maximum=MAX_ID, examples=[1])
                param.setdefault("description", "an id from 1 to 2**63-1; any other is a 404")


def _limits(doc: dict[str, Any], settings: Settings) -> None:
    for path, _, op in _operations(doc):
        body = op.get("requestBody")
        if body is None:
            continue
        if path in UPLOAD_PATHS:
            limit, setting = settings.max_upload_bytes, "SWEEPS_MAX_UPLOAD_BYTES"
            form = body["content"]["multipart/form-data"]["schema"]
            # The form is parsed with at most one file and four parts; no other field is read.
            form.update(additionalProperties=False, maxProperties=UPLOAD_PATHS[path])
        else:
            limit, setting = settings.max_body_bytes, "SWEEPS_MAX_BODY_BYTES"
        body["description"] = (
            f"At most {limit} bytes (setting {setting}); a larger body is refused with 413 "
            "`limit_exceeded` before it is read."
        )
        body["x-max-bytes"] = limit


# Shown in /docs, and sent by API testers (schemathesis's examples phase) to create a real sweep.
SWEEP_EXAMPLE = {
    "name": "lr x batch size on the cos/arccos toy",
    "workload": {"preset": "cos_arccos", "params": {}},
    "epochs": 3,
    "seeds": 2,
    "space": {"learning_rate": [0.001, 0.01, 0.1], "batch_size": [4, 12]},
}


def _examples(doc: dict[str, Any]) -> None:
    for path, method, op in _operations(doc):
        if (path, method) == ("/v1/sweeps", "post"):
            op["requestBody"]["content"]["application/json"]["example"] = SWEEP_EXAMPLE


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def _links(doc: dict[str, Any]) -> None:
    """From a created (or listed) resource to what can be read of it, by operationId."""
    ops = {op["operationId"]: (path, method, op) for path, method, op in _operations(doc)}

    def add(source: str, status: str, name: str, link: dict[str, Any]) -> None:
        if source in ops and link["operationId"] in ops:
            response = ops[source][2]["responses"].get(status)
            if response is not None:
                response.setdefault("links", {})[name] = link

    for source in ("create_sweep_v1_sweeps_post",):
        for target, (path, method, op) in ops.items():
            path_params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            if path.startswith("/v1/sweeps/{sweep_id}") and path_params == {"sweep_id"}:
                name = op["operationId"].split("_v1_")[0]
                link = _link(target, f"{method.upper()} {path} of the sweep", sweep_id="$response.body#/id")
                for status in ("201", "200"):
                    add(source, status, name, link)
    by_sweep = "$request.path.sweep_id"
    first_run = "$response.body#/items/0/id"
    new_id = "$response.body#/id"
    first_config = "$response.body#/items/0/config_id"
    for status, source, name, link in (
        ("201", "upload_dataset_v1_datasets_post", "get_dataset",
         _link("get_dataset_v1_datasets__dataset_id__get", "the dataset", dataset_id=new_id)),
        ("201", "create_workload_v1_workloads_post", "get_workload",
         _link("get_workload_v1_workloads__workload_id__get", "the workload", workload_id=new_id)),
        ("200", "list_runs_v1_sweeps__sweep_id__runs_get", "get_run",
         _link("get_run_v1_runs__run_id__get", "the first run", run_id=first_run)),
        ("200", "list_runs_v1_sweeps__sweep_id__runs_get", "get_curve",
         _link("get_curve_v1_runs__run_id__curve_get", "the first run's curve", run_id=first_run)),
        ("200", "get_run_v1_runs__run_id__get", "get_curve",
         _link("get_curve_v1_runs__run_id__curve_get", "the run's curve", run_id=new_id)),
        ("200", "list_configs_v1_sweeps__sweep_id__configs_get", "get_config",
         _link("get_config_v1_sweeps__sweep_id__configs__config_id__get", "the first configuration",
               sweep_id=by_sweep, config_id=first_config)),
    ):  # fmt: skip
        add(source, status, name, link)
    # The workload that uses an uploaded dataset: POST /v1/workloads with its id in the body.
    add(
        "upload_dataset_v1_datasets_post",
        "201",
        "create_workload",
        {
            "operationId": "create_workload_v1_workloads_post",
            "requestBody": {"name": "uploaded", "dataset_id": "$response.body#/id", "model": "{}"},
            "description": "a workload that trains a Keras model on this dataset",
        },
    )


def _errors(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["ErrorOut"]
    schema["properties"]["error"]["enum"] = list(ERROR_CODES)
    schema["description"] = "Every error, in one shape. The codes:\n\n" + error_codes_markdown()


def installer(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The ``app.openapi`` of this app: built once, then served as it is."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _security(doc, settings)
            _path_ids(doc)
            _limits(doc, settings)
            _links(doc)
            _examples(doc)
            _errors(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    return openapi
