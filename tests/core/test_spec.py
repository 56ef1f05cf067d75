from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from service.core.config import Settings
from service.core.db import Database
from service.core.errors import InvalidSpec, LimitExceeded, NotFound
from service.core.spec import SweepSpec, n_seeds, seed_pairs
from service.core.sweeps import create_sweep, parse_spec
from tests.conftest import small_spec


def _spec(**kw: object) -> SweepSpec:
    base: dict[str, object] = {"name": "s", "workload": {"preset": "sensor_lstm"}, "epochs": 5}
    base.update(kw)
    return SweepSpec.model_validate(base)


def test_init_and_data_seeds_are_independent_streams() -> None:
    pairs = seed_pairs(4)
    assert [p[0] for p in pairs] == [0, 1, 2, 3]
    assert len({p[1] for p in pairs}) == 4 and len({p[2] for p in pairs}) == 4
    assert all(p[1] != p[2] for p in pairs)
    crossed = seed_pairs(
        SweepSpec.model_validate(
            {"name": "s", "workload": {"preset": "x"}, "epochs": 1, "seeds": {"init": 2, "data": 3}}
        ).seeds
    )
    assert len(crossed) == 6
    assert len({p[1] for p in crossed}) == 2 and len({p[2] for p in crossed}) == 3


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ({"learnig_rate": [1e-3]}, "learnig_rate"),
        ({"learning_rate": [-1.0]}, "learning_rate"),
        ({"batch_size": [0]}, "batch_size"),
        ({"beta_1": [1.0]}, "beta_1"),
        ({"optimizer": ["adagrad"]}, "optimizer"),
        ({"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}}, "points"),
        ({"beta_1": {"low": 0.5, "high": 1.5, "points": 3}}, "beta_1"),
        ({"weight_decay": {"low": 0, "high": 0.1, "log": True, "points": 3}}, "weight_decay"),
        ({"momentum": [0.5, 0.5]}, "momentum"),
        ({"batch_size": [4, 4.0]}, "batch_size"),  # equal numbers repeat, as JSON Schema's uniqueItems says
    ],
)
def test_bad_space_is_rejected_with_the_field_named(space: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _spec(space=space)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        ({"type": "tpe"}, "sampler: Value error, sampler.n_trials is required for a tpe sampler"),
        ({"n_trials": 3}, "sampler.n_trials is only for random/tpe/qmc samplers; a grid runs every point"),
        ({"type": "grid", "n_trials": 2}, "sampler.n_trials is only for random/tpe/qmc samplers"),
        ({"type": "random", "n_trials": 0}, "sampler.n_trials: Input should be greater than or equal to 1"),
        ({"type": "grid", "bogus": 1}, "sampler.bogus: Extra inputs are not permitted"),
    ],
)
def test_sampler_union_keeps_its_errors(sampler: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpec, match=re.escape(message)):
        parse_spec(small_spec(sampler=sampler))


@pytest.mark.parametrize(
    "sampler", [None, {}, {"type": "grid"}, {"type": "grid", "n_trials": None}, {"seed": 3},
                {"type": "random", "n_trials": 3}, {"type": "qmc", "n_trials": 1, "seed": 2}],
)  # fmt: skip
def test_sampler_union_keeps_every_valid_spec_valid(sampler: dict[str, object] | None) -> None:
    spec = parse_spec(small_spec() if sampler is None else small_spec(sampler=sampler))
    assert spec.sampler.type == (sampler or {}).get("type", "grid")
    assert spec.sampler.n_trials == (sampler or {}).get("n_trials")


@pytest.mark.parametrize("seeds", [3, [0, 5, 9], {"init": 2, "data": [1, 4, 7]}, {"init": [3], "data": 1}])
def test_n_seeds_counts_the_pairs(seeds: object) -> None:
    spec = parse_spec(small_spec(seeds=seeds))
    assert n_seeds(spec.seeds) == len(seed_pairs(spec.seeds))


def test_a_huge_seed_count_is_refused_by_the_limit_without_allocating(settings: Settings) -> None:
    """Found by schemathesis: seeds=10**12 once built a list of 10**12 seeds (MemoryError)."""
    with pytest.raises(LimitExceeded, match="seeds per configuration is over the limit"):
        create_sweep(Database(settings.database_url), settings, parse_spec(small_spec(seeds=10**12)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("record_steps", 0), ("record_steps", "true"), ("epochs", "3"), ("stability", {"rebound_max": False})],
)
def test_json_types_are_strict_as_documented(field: str, value: object) -> None:
    """Found by schemathesis: 0 for false and "3" for 3 were accepted although the document says
    boolean and integer."""
    with pytest.raises(InvalidSpec, match=field):
        parse_spec(small_spec(**{field: value}))


def test_a_float_field_still_takes_an_integer() -> None:
    spec = parse_spec(
        small_spec(space={"learning_rate": {"low": 1, "high": 2, "points": 2}, "batch_size": [4]})
    )
    assert spec.space.learning_rate is not None


def test_a_range_takes_its_ends_in_either_order() -> None:
    """JSON Schema cannot say "high >= low", so the document promises either order and the spec keeps it."""
    spec = _spec(space={"learning_rate": {"low": 1e-1, "high": 1e-3, "log": True, "points": 3}})
    assert spec.space.learning_rate is not None
    assert (spec.space.learning_rate.low, spec.space.learning_rate.high) == (1e-3, 1e-1)  # type: ignore[union-attr]
    assert spec.space.learning_rate.grid() == [0.001, 0.01, 0.1]  # type: ignore[union-attr]


def test_an_integer_field_takes_a_whole_float_as_json_schema_does() -> None:
    """Found by schemathesis: JSON Schema's "integer" is any number without a fraction (3.0 too)."""
    spec = _spec(epochs=3.0, seeds=[0.0, 2.0], sampler={"type": "tpe", "n_trials": 4.0})
    assert spec.epochs == 3 and isinstance(spec.epochs, int) and spec.seeds == [0, 2]
    assert spec.sampler.n_trials == 4
    with pytest.raises(ValidationError, match="epochs"):
        _spec(epochs=3.5)
    with pytest.raises(ValidationError, match="nesterov"):
        _spec(space={"nesterov": [True, 1]})


def test_true_and_1_are_different_values_but_1_and_1_0_repeat() -> None:
    assert _spec(space={"shuffle": [True, False]}).space.shuffle == [True, False]
    with pytest.raises(ValidationError, match="repeat"):
        _spec(space={"clipnorm": [1, 1.0]})


def test_an_uploaded_workload_id_past_64_bits_is_a_404_like_any_missing_one(
    db: Database, settings: Settings
) -> None:
    spec = parse_spec(small_spec(workload={"id": 2**64}))
    with pytest.raises(NotFound, match="does not exist"):
        create_sweep(db, settings, spec)


def test_init_is_seeded_by_default_or_saved() -> None:
    assert SweepSpec.model_validate(small_spec()).init == "seeded"
    assert SweepSpec.model_validate(small_spec(init="saved")).init == "saved"
    with pytest.raises(InvalidSpec, match="init"):
        parse_spec(small_spec(init="pretrained"))


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ({"every": 0}, "every"),
        ({"iterations": 0}, "iterations"),
        ({"examples": 0}, "examples"),
        ({"every": 5, "lanczos": True}, "lanczos"),
        ({"every": "5"}, "every"),
        ({"tolerance": 0}, "tolerance"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"products": "forward"}, "products"),
    ],
)
def test_record_sharpness_is_checked_field_by_field(option: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _spec(record_sharpness=option)
    assert info.value.errors()[0]["loc"][:2] == ("record_sharpness", field)


def test_record_sharpness_defaults() -> None:
    opts = _spec(record_sharpness={}).record_sharpness
    assert opts is not None and (opts.every, opts.iterations, opts.examples, opts.tolerance) == (
        1,
        20,
        None,
        None,
    )
    assert opts.products == "exact"
    assert _spec(record_sharpness={"products": "difference"}).record_sharpness.products == "difference"  # type: ignore[union-attr]
    assert _spec(record_sharpness={"tolerance": 1e-3}).record_sharpness.tolerance == 1e-3  # type: ignore[union-attr]
    assert _spec().record_sharpness is None
