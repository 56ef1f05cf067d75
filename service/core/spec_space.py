"""What a sweep may vary: its dimensions, each a range or a list of values, and their bounds.

The ``space`` block of a ``service.core.spec.SweepSpec``. The configurations a space names
are enumerated in ``service.core.proposals.grid``; its OpenAPI schema is written in
``service.core.spec_schema`` (one dimension at a time, as ``Space``'s validator checks it).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from service.core import spec_schema

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = (
    "constant",
    "cosine",
    "exponential",
    "inverse_time",
    "cyclic",
    "reduce_on_plateau",
    "warmup",
)

# Which optimizer each optimizer-specific dimension applies to. Dimensions not
# listed here (learning_rate, batch_size, clipnorm, schedule, shuffle) apply to all.
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "beta_1": ("adam", "adamw"),
    "beta_2": ("adam", "adamw"),
    "epsilon": ("adam", "adamw", "rmsprop"),
    "weight_decay": ("adamw",),
    "rho": ("rmsprop",),
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
}

# Dimensions in the order configurations are enumerated and shown.
DIMENSIONS = (
    "optimizer",
    "learning_rate",
    "batch_size",
    "beta_1",
    "beta_2",
    "epsilon",
    "weight_decay",
    "rho",
    "momentum",
    "nesterov",
    "clipnorm",
    "schedule",
    "shuffle",
)
LOG_DIMENSIONS = ("learning_rate", "epsilon", "weight_decay")


class Strict(BaseModel):
    # strict: JSON types as the OpenAPI document states them (no "3" for 3, no 0 for false);
    # a float field still takes an integer, and an integer field a whole float (below).
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_floats_are_integers(cls, data: Any) -> Any:
        """3.0 where an integer goes is 3: JSON Schema's "integer" is any number without a
        fraction, so the document promises it, and strict validation alone would refuse it."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and _wants_integer(field.annotation):
                out[name] = _whole(value) if not isinstance(value, list) else [_whole(v) for v in value]
        return out


def _whole(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _leaf_types(tp: Any) -> set[Any]:
    args = get_args(tp)
    if not args:
        return {tp}
    return set().union(*(_leaf_types(a) for a in args))


def _wants_integer(tp: Any) -> bool:
    leaves = _leaf_types(tp)
    return int in leaves and float not in leaves and Any not in leaves


class Range(Strict):
    """A numeric range: ``{low, high, log, points}``, ends in either order; ``points`` makes a grid axis."""

    low: float
    high: float
    log: bool = False
    points: int | None = Field(None, ge=1, le=spec_schema.MAX_POINTS)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.high < self.low:
            # The two ends, in either order: a rule JSON Schema could not state otherwise.
            self.low, self.high = self.high, self.low
        if self.log and self.low <= 0:
            raise ValueError("a log range needs both ends > 0")
        return self

    def grid(self) -> list[float]:
        if self.points is None:
            raise ValueError("a grid sweep needs `points` on every range (or give `values`)")
        if self.points == 1:
            return [self.low]
        if self.log:
            vals = np.geomspace(self.low, self.high, self.points)
        else:
            vals = np.linspace(self.low, self.high, self.points)
        # Rounded to 6 significant digits so that values are stable, readable keys.
        return [float(f"{v:.6g}") for v in vals]


class Values(Strict):
    values: list[Any] = Field(min_length=1)


Dimension = Range | Values | list[Any]


def _dim(name: str) -> Any:
    """A dimension field whose OpenAPI schema states what ``Space``'s validator accepts."""
    if name in ("optimizer", "schedule"):
        schema = spec_schema.enum_dimension_schema(name, OPTIMIZERS if name == "optimizer" else SCHEDULES)
    else:
        schema = spec_schema.dimension_schema(name)
    return WithJsonSchema(schema)


class Space(Strict):
    learning_rate: Annotated[Dimension | None, _dim("learning_rate")] = None
    batch_size: Annotated[Dimension | None, _dim("batch_size")] = None
    optimizer: Annotated[list[str] | Values | None, _dim("optimizer")] = None
    beta_1: Annotated[Dimension | None, _dim("beta_1")] = None
    beta_2: Annotated[Dimension | None, _dim("beta_2")] = None
    epsilon: Annotated[Dimension | None, _dim("epsilon")] = None
    weight_decay: Annotated[Dimension | None, _dim("weight_decay")] = None
    rho: Annotated[Dimension | None, _dim("rho")] = None
    momentum: Annotated[Dimension | None, _dim("momentum")] = None
    nesterov: Annotated[list[bool] | Values | None, _dim("nesterov")] = None
    clipnorm: Annotated[Dimension | None, _dim("clipnorm")] = None
    schedule: Annotated[list[str] | Values | None, _dim("schedule")] = None
    shuffle: Annotated[list[bool] | Values | None, _dim("shuffle")] = None

    @model_validator(mode="after")
    def _check_values(self) -> Space:
        for name in DIMENSIONS:
            dim = getattr(self, name)
            if dim is None:
                continue
            if isinstance(dim, Range):
                if name not in spec_schema.RANGE_DIMENSIONS:
                    raise ValueError(f"space.{name}: give a list of values, not a range")
                _check_range(name, dim)
                continue
            values = dim.values if isinstance(dim, Values) else dim
            if len(values) == 0:
                raise ValueError(f"space.{name}: give at least one value")
            for v in values:
                _check_value(name, v)
            if len({_same_json_value(v) for v in values}) != len(values):
                raise ValueError(f"space.{name}: values repeat; list each value once")
        return self


def _same_json_value(v: Any) -> tuple[str, Any]:
    """Equal for values JSON Schema's uniqueItems calls equal: 1 and 1.0 repeat, true and 1 do not."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("number", float(v))
    return ("other", repr(v))


def _check_range(name: str, r: Range) -> None:
    """A range's ends obey the dimension's bounds (a batch-size range's ends need not be whole)."""
    for end in (r.low, r.high):
        if name == "batch_size":
            if end < 1:
                raise ValueError(f"space.batch_size: a range's ends must be >= 1, got {end!r}")
        else:
            _check_value(name, end)


def _check_value(name: str, v: Any) -> None:
    if name == "optimizer":
        if v not in OPTIMIZERS:
            raise ValueError(f"space.optimizer: {v!r} is not one of {', '.join(OPTIMIZERS)}")
        return
    if name == "schedule":
        if v not in SCHEDULES:
            raise ValueError(f"space.schedule: {v!r} is not one of {', '.join(SCHEDULES)}")
        return
    if name in ("nesterov", "shuffle"):
        if not isinstance(v, bool):
            raise ValueError(f"space.{name}: {v!r} must be true or false")
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"space.{name}: {v!r} is not a number")
    if not math.isfinite(v):
        raise ValueError(f"space.{name}: {v!r} is not finite")
    if name == "batch_size":
        if int(v) != v or v < 1:
            raise ValueError(f"space.batch_size: {v!r} must be a positive integer")
    elif name in ("learning_rate", "epsilon"):
        if v <= 0:
            raise ValueError(f"space.{name}: {v!r} must be > 0")
    elif name in ("beta_1", "beta_2", "rho", "momentum"):
        if not 0 <= v < 1:
            raise ValueError(f"space.{name}: {v!r} must be in [0, 1)")
    elif name in ("clipnorm", "weight_decay"):
        if v < 0:
            raise ValueError(f"space.{name}: {v!r} must be >= 0 (0 means off)")
