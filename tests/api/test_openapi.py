"""The OpenAPI document says what the API accepts: security per operation following the access
settings, bounded path ids, the `param=` pattern, body limits, the sampler union, and links."""

from __future__ import annotations

import re
from typing import Any

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database
from service.core.sweeps import parse_spec


def _doc(settings: Settings, db: Database, **update: Any) -> dict[str, Any]:
    doc: dict[str, Any] = create_app(settings.model_copy(update=update), db).openapi()
    return doc


def _ops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{m.upper()} {p}": op for p, ops in doc["paths"].items() for m, op in ops.items()}


def test_reads_are_public_by_default_and_writes_need_the_token(settings: Settings, db: Database) -> None:
    ops = _ops(_doc(settings, db))
    assert ops["POST /v1/sweeps"]["security"] == [{"HTTPBearer": []}]
    assert ops["DELETE /v1/sweeps/{sweep_id}"]["security"] == [{"HTTPBearer": []}]
    assert all("security" not in op for name, op in ops.items() if name.startswith("GET "))
    private = _ops(_doc(settings, db, read_access="token"))
    assert private["GET /v1/sweeps"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in private["GET /healthz"]
    open_writes = _ops(_doc(settings, db, require_token_for_writes=False))
    assert "security" not in open_writes["POST /v1/sweeps"]


def test_path_ids_are_bounded_64_bit_integers(settings: Settings, db: Database) -> None:
    for op in _ops(_doc(settings, db)).values():
        for p in op.get("parameters", []):
            if p["in"] == "path" and p["name"].endswith("_id"):
                assert (p["schema"]["minimum"], p["schema"]["maximum"]) == (1, 2**63 - 1)


def test_param_filters_have_a_pattern(settings: Settings, db: Database) -> None:
    op = _ops(_doc(settings, db))["GET /v1/sweeps/{sweep_id}/configs"]
    (param,) = [p for p in op["parameters"] if p["name"] == "param"]
    pattern = next(s for s in param["schema"]["anyOf"] if s.get("type") == "array")["items"]["pattern"]
    for ok in ("learning_rate=1e-4..1e-2", "batch_size=32", "optimizer=adam", "lr=..0.1"):
        assert re.search(pattern, ok), ok
    for bad in ("learning_rate", "=1", "x=a..b", "x=", "X=1"):
        assert not re.search(pattern, bad), bad


def test_body_and_upload_limits_are_documented(settings: Settings, db: Database) -> None:
    ops = _ops(_doc(settings, db))
    assert ops["POST /v1/sweeps"]["requestBody"]["x-max-bytes"] == settings.max_body_bytes
    upload = ops["POST /v1/datasets"]["requestBody"]
    assert upload["x-max-bytes"] == settings.max_upload_bytes
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["additionalProperties"] is False and form["maxProperties"] == 2
    keras_file = ops["POST /v1/workloads/keras"]["requestBody"]
    assert keras_file["x-max-bytes"] == settings.max_upload_bytes
    form = keras_file["content"]["multipart/form-data"]["schema"]
    assert form["additionalProperties"] is False and form["maxProperties"] == 3
    assert (
        form["required"] == ["file", "dataset_id"]
        and "zip bomb" not in form["properties"]["file"]["description"]
    )
    assert "model.weights.h5" in form["properties"]["file"]["description"]


def test_sampler_is_a_discriminated_union(settings: Settings, db: Database) -> None:
    schemas = _doc(settings, db)["components"]["schemas"]
    sampler = schemas["SweepSpec"]["properties"]["sampler"]
    assert sampler["discriminator"]["propertyName"] == "type"
    assert set(sampler["discriminator"]["mapping"]) == {"grid", "random", "tpe", "qmc"}
    assert "n_trials" in schemas["OptunaSampler"]["required"]
    assert schemas["GridSampler"]["properties"]["n_trials"]["type"] == "null"


def test_links_follow_a_sweep_a_dataset_and_a_run(settings: Settings, db: Database) -> None:
    ops = _ops(_doc(settings, db))
    created = ops["POST /v1/sweeps"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in created.values()}
    for name in ("GET /v1/sweeps/{sweep_id}", "GET /v1/sweeps/{sweep_id}/configs",
                 "GET /v1/sweeps/{sweep_id}/runs", "GET /v1/sweeps/{sweep_id}/report"):  # fmt: skip
        assert ops[name]["operationId"] in targets, name
    assert all(link["parameters"] == {"sweep_id": "$response.body#/id"} for link in created.values())
    dataset = ops["POST /v1/datasets"]["responses"]["201"]["links"]
    assert dataset["create_workload"]["requestBody"]["dataset_id"] == "$response.body#/id"
    runs = ops["GET /v1/sweeps/{sweep_id}/runs"]["responses"]["200"]["links"]
    assert runs["get_curve"]["operationId"] == ops["GET /v1/runs/{run_id}/curve"]["operationId"]


def test_the_sweep_example_is_a_valid_spec(settings: Settings, db: Database) -> None:
    body = _ops(_doc(settings, db))["POST /v1/sweeps"]["requestBody"]["content"]["application/json"]
    assert parse_spec(body["example"]).name == body["example"]["name"]


def test_an_idempotent_replay_is_a_documented_200(settings: Settings, db: Database) -> None:
    responses = _ops(_doc(settings, db))["POST /v1/sweeps"]["responses"]
    assert responses["200"]["content"] == responses["201"]["content"]
