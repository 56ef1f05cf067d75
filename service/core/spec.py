"""The sweep specification: what a person POSTs (or submits as YAML/JSON).

Validated with pydantic; unknown keys are rejected so that a typo such as
``learnig_rate`` is an error that names the field, not a silently ignored
dimension. The configurations a spec names are enumerated in
``service.core.proposals.grid``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

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


class _Strict(BaseModel):
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


class Range(_Strict):
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


class Values(_Strict):
    values: list[Any] = Field(min_length=1)


Dimension = Range | Values | list[Any]


def _dim(name: str) -> Any:
    """A dimension field whose OpenAPI schema states what ``Space``'s validator accepts."""
    if name in ("optimizer", "schedule"):
        schema = spec_schema.enum_dimension_schema(name, OPTIMIZERS if name == "optimizer" else SCHEDULES)
    else:
        schema = spec_schema.dimension_schema(name)
    return WithJsonSchema(schema)


class Space(_Strict):
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


def _preset_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(spec_schema.preset_workload_schema())


class PresetWorkload(_Strict):
    # The document lists the presets, each with its parameters' types and bounds.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_preset_schema)

    preset: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


MAX_DB_ID = 2**63 - 1  # database ids are 64-bit integers from 1


class UploadedWorkload(_Strict):
    # Any id from 1: one past 64 bits names nothing, a 404 like any missing workload (resolve_workload).
    id: int = Field(ge=1, json_schema_extra={"minimum": 1})


class EntryPointWorkload(_Strict):
    entry_point: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)


WorkloadRef = PresetWorkload | UploadedWorkload | EntryPointWorkload


class CrossedSeeds(_Strict):
    """Init seeds x data-order seeds, crossed, to separate their effects (report 3)."""

    init: Annotated[int | list[int], WithJsonSchema(spec_schema.SEED_COUNT_OR_LIST)]
    data: Annotated[int | list[int], WithJsonSchema(spec_schema.SEED_COUNT_OR_LIST)]


class GridSampler(_Strict):
    """Every point of the grid, in order; nothing to count."""

    type: Literal["grid"] = "grid"
    n_trials: None = Field(None, description="not used by a grid: it runs every point")
    seed: int | None = None


class OptunaSampler(_Strict):
    """Configurations asked of Optuna's sampler of this name, ``n_trials`` of them."""

    type: Literal["random", "tpe", "qmc"]
    n_trials: int = Field(ge=1)
    seed: int | None = None


# A discriminated union, so the OpenAPI document says which fields go with which sampler.
Sampler = Annotated[GridSampler | OptunaSampler, Field(discriminator="type")]
_SAMPLER_TYPES = ("grid", "random", "tpe", "qmc")


def error_path(loc: tuple[int | str, ...] | list[int | str]) -> list[str]:
    """The field path of a validation error, without the tag pydantic puts after a union's name
    (``sampler.random.n_trials`` is reported as ``sampler.n_trials``, as before the union)."""
    parts = [str(p) for p in loc]
    return [p for i, p in enumerate(parts) if not (i and parts[i - 1] == "sampler" and p in _SAMPLER_TYPES)]


def _sampler_rules(value: Any) -> Any:
    """The cross-field rules, checked before the union so their messages name the fix; a sampler
    without ``type`` is a grid."""
    if not isinstance(value, dict):
        return value
    kind = value.get("type", "grid")
    if kind not in _SAMPLER_TYPES:
        return value  # the union's own error lists the valid types
    if kind != "grid" and value.get("n_trials") is None:
        raise ValueError(f"sampler.n_trials is required for a {kind} sampler")
    if kind == "grid" and value.get("n_trials") is not None:
        raise ValueError("sampler.n_trials is only for random/tpe/qmc samplers; a grid runs every point")
    return {**value, "type": kind}


class RefineEdge(_Strict):
    rounds: int = Field(ge=1, le=10)


class ScheduleOptions(_Strict):
    """Fixed settings of the learning-rate schedules named in ``space.schedule``."""

    decay: float = Field(0.01, ge=0, description="inverse_time: lr / (1 + decay * step), old Keras `decay`")
    decay_rate: float = Field(
        0.96, gt=0, le=1, description="exponential: lr * decay_rate ** (step / decay_steps)"
    )
    decay_steps: int = Field(100, ge=1)
    cyclic_min_lr: float = Field(5e-6, gt=0)
    cyclic_max_lr: float = Field(3e-4, gt=0)
    cyclic_step_size: int = Field(200, ge=1, description="half-cycle length in steps")
    plateau_factor: float = Field(0.2, gt=0, lt=1)
    plateau_patience: int = Field(5, ge=1)
    plateau_min_lr: float = Field(1e-5, ge=0)
    plateau_monitor: Literal["val_loss", "loss"] = "val_loss"
    warmup_epochs: int = Field(5, ge=1)


class RecordSharpness(_Strict):
    """Measure each run's sharpness every ``every`` epochs (docs/sharpness.md).

    The top eigenvalue of the training-loss Hessian with respect to the weights, by
    ``iterations`` steps of power iteration on Hessian-vector products (fewer with
    ``tolerance``, once the estimate stopped moving); for Adam, AdamW and RMSprop also
    the preconditioned sharpness (top eigenvalue of P^-1 H).
    """

    every: int = Field(1, ge=1, description="estimate at epochs 0, every, 2*every, ...")
    iterations: int = Field(
        20, ge=1, le=1000, description="power-iteration steps (Hessian-vector products) per estimate"
    )
    examples: int | None = Field(
        None,
        ge=1,
        description="a fixed subset of this many training examples, drawn by each run's data seed; "
        "null: the whole training set",
    )
    tolerance: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="stop an estimate's power iteration early, before `iterations` steps, once every "
        "run's Rayleigh quotient changed by less than this fraction in one step (1e-3: within about "
        "0.1%); null: always `iterations` steps",
    )


class SweepSpec(_Strict):
    # The grid-needs-points rule in the document too (spec_schema.GRID_NEEDS_POINTS).
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=spec_schema.GRID_NEEDS_POINTS)

    name: str = Field(min_length=1, max_length=200)
    workload: WorkloadRef
    epochs: int = Field(ge=1)
    seeds: Annotated[int | list[int] | CrossedSeeds, WithJsonSchema(spec_schema.SEEDS)] = 3
    space: Space = Field(default_factory=Space)
    sampler: Sampler = Field(default_factory=GridSampler)
    schedule_options: ScheduleOptions = Field(default_factory=ScheduleOptions)
    # Per-sweep overrides of the run-class thresholds (service.core.analysis.thresholds).
    stability: Annotated[dict[str, float], WithJsonSchema(spec_schema.stability_schema())] = Field(
        default_factory=dict
    )
    refine_edge: RefineEdge | None = None
    record_steps: bool = Field(False, description="also store downsampled mini-batch losses")
    init: Literal["seeded", "saved"] = Field(
        "seeded",
        description="seeded: each seed draws fresh initial weights; saved: every seed starts from the "
        "weights of the .keras file the workload was uploaded with, and only the data order varies",
    )
    record_sharpness: RecordSharpness | None = Field(
        None, description="also store each run's sharpness and its stability threshold per epoch"
    )
    description: str | None = Field(None, max_length=5000)

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, v: Any) -> Any:
        return _sampler_rules(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int] | CrossedSeeds) -> int | list[int] | CrossedSeeds:
        for part in [v] if not isinstance(v, CrossedSeeds) else [v.init, v.data]:
            if isinstance(part, int):
                if part < 1:
                    raise ValueError("seeds must be >= 1 (how many seeds per configuration)")
            else:
                if not part:
                    raise ValueError("give at least one seed")
                if len(set(part)) != len(part):
                    raise ValueError("seeds repeat; list each seed once")
                if any(s < 0 for s in part):
                    raise ValueError("seeds must be non-negative integers")
        return v

    @model_validator(mode="after")
    def _sampler_space(self) -> SweepSpec:
        if self.sampler.type == "grid":
            for name in DIMENSIONS:
                dim = getattr(self.space, name)
                if isinstance(dim, Range) and dim.points is None:
                    raise ValueError(
                        f"space.{name}: a grid sweep needs `points` on a range, or a list of values"
                    )
        return self


def seed_pairs(seeds: int | list[int] | CrossedSeeds) -> list[tuple[int, int, int]]:
    """(seed, init_seed, data_seed) for each run of a configuration.

    Init and data-order seeds are drawn independently from the user's seed
    with numpy's SeedSequence (distinct spawn keys), so the weights of seed 3
    and the data order of seed 3 are unrelated streams. The same seed gives
    the same init in every configuration: configurations are compared on
    common random numbers. With ``CrossedSeeds`` every init seed meets every
    data seed; ``seed`` then numbers the pair.
    """

    def derive(s: int, stream: int) -> int:
        return int(np.random.SeedSequence([s, stream]).generate_state(1)[0] & 0x7FFFFFFF)

    if isinstance(seeds, CrossedSeeds):
        inits = list(range(seeds.init)) if isinstance(seeds.init, int) else seeds.init
        datas = list(range(seeds.data)) if isinstance(seeds.data, int) else seeds.data
        return [
            (i * len(datas) + j, derive(a, 0), derive(b, 1))
            for i, a in enumerate(inits)
            for j, b in enumerate(datas)
        ]
    base = list(range(seeds)) if isinstance(seeds, int) else seeds
    return [(s, derive(s, 0), derive(s, 1)) for s in base]


def n_seeds(seeds: int | list[int] | CrossedSeeds) -> int:
    """len(seed_pairs(seeds)), counted without building the pairs: the limit on seeds is checked
    with this number, so a spec asking for 10**12 seeds must not allocate them first."""

    def count(part: int | list[int]) -> int:
        return part if isinstance(part, int) else len(part)

    if isinstance(seeds, CrossedSeeds):
        return count(seeds.init) * count(seeds.data)
    return count(seeds)
