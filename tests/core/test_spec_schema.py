"""service/core/spec_schema.py: the document's schema of a sweep spec accepts exactly what the spec's
validators accept, case by case (schemathesis checks the same at random, in tests/reliability)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from service.api.app import create_app
from service.core.analysis.thresholds import Thresholds
from service.core.db import Database
from service.core.errors import InvalidSpec, NotFound
from service.core.sweeps import parse_spec
from service.core.workloads import resolve_preset_params
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    doc = create_app(make_settings("sqlite://"), Database("sqlite://")).openapi()
    schema = {"$ref": "#/components/schemas/SweepSpec", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def _spec(**kw: Any) -> dict[str, Any]:
    return {"name": "s", "workload": {"preset": "sensor_lstm"}, "epochs": 5, **kw}


def _accepted(body: dict[str, Any]) -> bool:
    """What POST /v1/sweeps accepts before any lookup: the spec, its thresholds, the preset's params."""
    try:
        spec = parse_spec(body)
        Thresholds().with_overrides(spec.stability)
        workload = body["workload"]
        if "preset" in workload:
            resolve_preset_params(workload["preset"], workload.get("params", {}))
    except (InvalidSpec, NotFound):
        return False
    return spec is not None


CASES = [
    _spec(),
    _spec(space={"learning_rate": [1e-3, 1e-2], "batch_size": [2, 8.0]}),
    _spec(space={"learning_rate": [0.0]}),
    _spec(space={"learning_rate": []}),
    _spec(space={"learning_rate": [1e-3, 1e-3]}),
    _spec(space={"clipnorm": [1, 1.0]}),
    _spec(space={"batch_size": [2.5]}),
    _spec(space={"batch_size": [True]}),
    _spec(space={"beta_1": [0.0, 0.999]}),
    _spec(space={"beta_1": [1.0]}),
    _spec(space={"optimizer": ["adam", "sgd"]}),
    _spec(space={"optimizer": ["adagrad"]}),
    _spec(space={"optimizer": {"values": ["rmsprop"]}}),
    _spec(space={"optimizer": {"low": 1, "high": 2, "points": 2}}),
    _spec(space={"schedule": ["cosine", "warmup"]}),
    _spec(space={"nesterov": [True, False]}),
    _spec(space={"nesterov": [True, 1]}),
    _spec(space={"learning_rate": {"low": 1e-1, "high": 1e-4, "log": True, "points": 4}}),
    _spec(space={"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}}),
    _spec(space={"learning_rate": {"low": 1e-4, "high": 1e-1, "points": None}}),
    _spec(space={"learning_rate": {"low": 1e-4, "high": 1e-1}}, sampler={"type": "random", "n_trials": 3}),
    _spec(space={"weight_decay": {"low": 0, "high": 1e-2, "log": True, "points": 3}}),
    _spec(space={"weight_decay": {"low": 0, "high": 1e-2, "points": 3}}),
    _spec(space={"batch_size": {"low": 0.5, "high": 8, "points": 3}}),
    _spec(space={"batch_size": {"low": 1, "high": 8, "points": 1001}}),
    _spec(sampler={"type": "grid", "n_trials": 3}),
    _spec(sampler={"type": "tpe"}),
    _spec(sampler={"n_trials": None}),
    _spec(seeds=0),
    _spec(seeds=[0, 0]),
    _spec(seeds=[3, 1.0]),
    _spec(seeds={"init": 2, "data": [0, 5]}),
    _spec(seeds={"init": [], "data": 1}),
    _spec(epochs=3.0),
    _spec(epochs=2.5),
    _spec(stability={"divergence_factor": 2.0, "smoothing_window": 5}),
    _spec(stability={"divergence_factor": 1.0}),
    _spec(stability={"smoothing_window": 2.5}),
    _spec(stability={"no_such_threshold": 1.0}),
    _spec(workload={"preset": "sensor_lstm", "params": {"units": 8, "noise": 0.1}}),
    _spec(workload={"preset": "sensor_lstm", "params": {"units": 0}}),
    _spec(workload={"preset": "sensor_lstm", "params": {"units": 8.5}}),
    _spec(workload={"preset": "sensor_lstm", "params": {"unknown": 1}}),
    _spec(workload={"preset": "sequence_rnn", "params": {"cell": "gru"}}),
    _spec(workload={"preset": "sequence_rnn", "params": {"cell": "transformer"}}),
    _spec(workload={"preset": "no_such_preset"}),
    _spec(workload={"id": 2**70}),
    _spec(workload={"id": 0}),
]


@pytest.mark.parametrize("body", CASES, ids=range(len(CASES)))
def test_the_document_accepts_exactly_what_the_spec_accepts(
    validator: jsonschema.Draft202012Validator, body: dict[str, Any]
) -> None:
    assert validator.is_valid(body) == _accepted(body), list(validator.iter_errors(body))[:2]


def test_least_squares_n_below_d_is_the_one_rule_the_document_only_describes(
    validator: jsonschema.Draft202012Validator,
) -> None:
    """JSON Schema cannot compare two fields: the preset's description states it, the API answers 422."""
    body = _spec(workload={"preset": "least_squares", "params": {"n": 4, "d": 8}})
    assert validator.is_valid(body) and not _accepted(body)
    doc = validator.schema["components"]["schemas"]["PresetWorkload"]
    (least,) = [v for v in doc["anyOf"] if v["properties"]["preset"]["const"] == "least_squares"]
    assert "`n` must be >= `d`" in least["description"]
