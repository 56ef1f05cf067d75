"""The JSON Schema of the sweep spec's dimensions and samplers, as the OpenAPI document states them.

The spec's validators (``service.core.spec``) keep their own messages, which
name the field and the fix; these fragments tell a client (and a fuzzer)
exactly what those validators accept: per dimension the type and bounds of
a value, lists of at least one value each listed once, a range's ends, and
that a grid needs ``points`` on every range. Both sides read the same
constants, and tests/reliability's schemathesis run checks that they agree
in both directions (valid data accepted, invalid data refused).
"""

from __future__ import annotations

from typing import Any

# (JSON Schema of one value, whether a range of them is allowed) per dimension.
_NUMBER = {"type": "number"}
_VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "learning_rate": {**_NUMBER, "exclusiveMinimum": 0},
    "epsilon": {**_NUMBER, "exclusiveMinimum": 0},
    "batch_size": {"type": "integer", "minimum": 1},
    "beta_1": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
    "beta_2": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
    "rho": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
    "momentum": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
    "clipnorm": {**_NUMBER, "minimum": 0},
    "weight_decay": {**_NUMBER, "minimum": 0},
    "nesterov": {"type": "boolean"},
    "shuffle": {"type": "boolean"},
}
# A range's ends: like a value, except that a batch-size range's ends need not be whole.
_RANGE_END_SCHEMAS: dict[str, dict[str, Any]] = {
    **_VALUE_SCHEMAS,
    "batch_size": {**_NUMBER, "minimum": 1},
}
RANGE_DIMENSIONS = (
    "learning_rate",
    "epsilon",
    "batch_size",
    "beta_1",
    "beta_2",
    "rho",
    "momentum",
    "clipnorm",
    "weight_decay",
)
MAX_POINTS = 1000


def value_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 1, "uniqueItems": True}


def range_schema(name: str) -> dict[str, Any]:
    end = _RANGE_END_SCHEMAS[name]
    return {
        "type": "object",
        "title": f"Range of {name}",
        "description": (
            "Values between two ends (in either order), log-spaced with `log`; "
            "`points` makes it a grid axis (required when the sampler is a grid)."
        ),
        "properties": {
            "low": end,
            "high": end,
            "log": {"type": "boolean", "default": False},
            "points": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_POINTS}, {"type": "null"}]},
        },
        "required": ["low", "high"],
        "additionalProperties": False,
        # A log range needs both ends > 0.
        "if": {"properties": {"log": {"const": True}}, "required": ["log"]},
        "then": {"properties": {"low": {"exclusiveMinimum": 0}, "high": {"exclusiveMinimum": 0}}},
    }


def dimension_schema(name: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dimension: a list of values, ``{values: [...]}``, a range where numeric, or null (not swept)."""
    one = item if item is not None else _VALUE_SCHEMAS[name]
    options: list[dict[str, Any]] = [
        value_list(one),
        {
            "type": "object",
            "properties": {"values": value_list(one)},
            "required": ["values"],
            "additionalProperties": False,
        },
    ]
    if name in RANGE_DIMENSIONS:
        options.append(range_schema(name))
    return {"anyOf": [*options, {"type": "null"}], "default": None}


def enum_dimension_schema(name: str, choices: tuple[str, ...]) -> dict[str, Any]:
    return dimension_schema(name, {"type": "string", "enum": list(choices)})


# Under a grid sampler (the default, also when `sampler` is left out), every range of the
# space needs `points`: a dimension is then a list, `{values}`, null, or an object with points.
_GRID_DIMENSION = {
    "anyOf": [
        {"type": "array"},
        {"type": "null"},
        {"type": "object", "required": ["values"]},
        {"type": "object", "required": ["points"], "properties": {"points": {"type": "integer"}}},
    ]
}
_OPTUNA_SAMPLER = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["random", "tpe", "qmc"]}},
}
GRID_NEEDS_POINTS: dict[str, Any] = {
    "if": {"properties": {"sampler": _OPTUNA_SAMPLER}, "required": ["sampler"]},
    "else": {"properties": {"space": {"properties": {name: _GRID_DIMENSION for name in RANGE_DIMENSIONS}}}},
}

# Seeds: how many (>= 1), or the seeds themselves (non-negative, each once), or crossed.
SEED_COUNT_OR_LIST: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "description": "how many seeds: 0, 1, ... n-1"},
        {**value_list({"type": "integer", "minimum": 0}), "description": "the seeds themselves"},
    ]
}
SEEDS: dict[str, Any] = {
    "anyOf": [*SEED_COUNT_OR_LIST["anyOf"], {"$ref": "#/components/schemas/CrossedSeeds"}],
    "default": 3,
}


def stability_schema() -> dict[str, Any]:
    """``stability``: overrides of the run-class thresholds, each a number in its valid range
    (``Thresholds.with_overrides`` checks the same)."""
    import dataclasses
    import math

    from service.core.analysis.thresholds import Thresholds, valid_range

    props: dict[str, Any] = {}
    for f in dataclasses.fields(Thresholds):
        lo, hi, lo_inc, hi_inc = valid_range(f.name)
        one: dict[str, Any] = {
            "type": "integer" if f.type in ("int", int) else "number",
            "default": f.default,
        }
        if math.isfinite(lo):
            one["minimum" if lo_inc else "exclusiveMinimum"] = lo
        if math.isfinite(hi):
            one["maximum" if hi_inc else "exclusiveMaximum"] = hi
        props[f.name] = one
    return {
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "description": "Overrides of the run-class thresholds (docs/architecture.md, Run classes).",
    }


# The one rule of a preset's parameters that JSON Schema cannot state (it compares two of them);
# a request that breaks it gets a 422 (invalid_spec) saying so.
_CROSS_FIELD = {"least_squares": "`n` must be >= `d` (defaults 64 and 8), so that X has d singular values."}


def preset_workload_schema() -> dict[str, Any]:
    """A preset by name with its own parameters, each typed and bounded as the preset checks them
    (``workloads.resolve_preset_params``)."""
    from service.core.workloads import PRESETS, preset_rules

    variants = []
    for name in sorted(PRESETS):
        params: dict[str, Any] = {}
        for key, rule in preset_rules(name).items():
            if rule.choices is not None:
                one: dict[str, Any] = {"enum": list(rule.choices)}
            else:
                one = {"type": "integer" if isinstance(rule.default, int) else "number"}
                if rule.low is not None:
                    one["minimum"] = rule.low
                if rule.high is not None:
                    one["maximum"] = rule.high
            params[key] = {**one, "default": rule.default, "description": rule.help}
        variants.append(
            {
                "type": "object",
                "title": f"Preset {name}",
                "properties": {
                    "preset": {"const": name},
                    "params": {"type": "object", "properties": params, "additionalProperties": False},
                },
                "required": ["preset"],
                "additionalProperties": False,
                **({"description": _CROSS_FIELD[name]} if name in _CROSS_FIELD else {}),
            }
        )
    return {"anyOf": variants, "title": "PresetWorkload"}
