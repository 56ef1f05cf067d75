"""The sweep specification: what a person POSTs (or submits as YAML/JSON).

Validated with pydantic; unknown keys are rejected so that a typo such as
``learnig_rate`` is an error that names the field, not a silently ignored
dimension. The configurations a spec names are enumerated in
``service.core.proposals.grid``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from service.core import spec_schema
from service.core.spec_space import DIMENSIONS, Range, Space, Strict


def _preset_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(spec_schema.preset_workload_schema())


class PresetWorkload(Strict):
    # The document lists the presets, each with its parameters' types and bounds.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_preset_schema)

    preset: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


MAX_DB_ID = 2**63 - 1  # database ids are 64-bit integers from 1


class UploadedWorkload(Strict):
    # Any id from 1: one past 64 bits names nothing, a 404 like any missing workload (resolve_workload).
    id: int = Field(ge=1, json_schema_extra={"minimum": 1})


class EntryPointWorkload(Strict):
    entry_point: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)


WorkloadRef = PresetWorkload | UploadedWorkload | EntryPointWorkload


class CrossedSeeds(Strict):
    """Init seeds x data-order seeds, crossed, to separate their effects (report 3)."""

    init: Annotated[int | list[int], WithJsonSchema(spec_schema.SEED_COUNT_OR_LIST)]
    data: Annotated[int | list[int], WithJsonSchema(spec_schema.SEED_COUNT_OR_LIST)]


class GridSampler(Strict):
    """Every point of the grid, in order; nothing to count."""

    type: Literal["grid"] = "grid"
    n_trials: None = Field(None, description="not used by a grid: it runs every point")
    seed: int | None = None


class OptunaSampler(Strict):
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


class RefineEdge(Strict):
    rounds: int = Field(ge=1, le=10)


class ScheduleOptions(Strict):
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


class RecordSharpness(Strict):
    """Measure each run's sharpness every ``every`` epochs (docs/sharpness.md).

    The top eigenvalue of the training-loss Hessian with respect to the weights, by
    ``iterations`` steps of Lanczos on Hessian-vector products (fewer with
    ``tolerance``, once every estimate's residual bound is below it); for Adam, AdamW
    and RMSprop also the preconditioned sharpness (top eigenvalue of P^-1 H).
    ``products`` says how each product is computed: exactly (double backward) or by a
    central difference of two gradients through the training kernels (cheaper, approximate).
    """

    every: int = Field(1, ge=1, description="estimate at epochs 0, every, 2*every, ...")
    iterations: int = Field(
        20, ge=1, le=1000, description="Lanczos steps (Hessian-vector products) per estimate"
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
        description="stop an estimate early, before `iterations` products, once every run's residual "
        "bound (the distance within which an eigenvalue provably lies) is below this fraction of its "
        "estimate; null: always `iterations` products",
    )
    products: Literal["exact", "difference"] = Field(
        "exact",
        description="exact: Hessian-vector products by double backward; difference: "
        "(gradient(w + e v) - gradient(w - e v)) / 2e through the kernels training uses (the fused "
        "LSTM kernel, cuDNN), cheaper on recurrent models and possible where a kernel has no second "
        "derivative; within ~1% of exact on smooth models (measured on LSTMs trained to high "
        "curvature), but wrong where the gradient jumps between w - e v and w + e v (ReLU and "
        "max-pooling kinks: such models are refused, use exact); docs/sharpness.md",
    )


class SweepSpec(Strict):
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
