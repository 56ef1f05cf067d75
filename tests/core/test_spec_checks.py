"""Spec checks that need the workload: each refusal names what is wrong and the fix."""

from __future__ import annotations

import pytest

from service.core.errors import InvalidSpec
from service.core.spec import SweepSpec
from service.core.spec_checks import check_batch_size, check_dimensions_apply, check_init
from tests.conftest import small_spec


def _spec(**overrides: object) -> SweepSpec:
    return SweepSpec.model_validate(small_spec(**overrides))


def test_a_dimension_the_optimizer_does_not_have() -> None:
    spec = _spec(space={"beta_1": [0.5, 0.9]})
    with pytest.raises(InvalidSpec, match=r"compiled optimizer sgd, which has no beta_1 .*adam, adamw"):
        check_dimensions_apply(spec, "sgd", "the model's compiled optimizer")
    check_dimensions_apply(spec, "adam", "the model's compiled optimizer")
    check_dimensions_apply(_spec(space={"optimizer": ["sgd", "adam"], "beta_1": [0.9]}), "sgd", "x")
    with pytest.raises(InvalidSpec, match="space.rho"):
        check_dimensions_apply(_spec(space={"rho": [0.8]}), "adam", "preset x's optimizer")


def test_batch_size_over_the_training_set() -> None:
    with pytest.raises(InvalidSpec, match="500 is larger than the training set of w, which has 98 examples"):
        check_batch_size(_spec(space={"batch_size": [2, 500]}), 98, "w")
    with pytest.raises(InvalidSpec, match="which has 98 examples"):
        check_batch_size(_spec(space={"batch_size": {"low": 2, "high": 128, "points": 3}}), 98, "w")
    check_batch_size(_spec(space={"batch_size": [2, 98]}), 98, "w")
    check_batch_size(_spec(space={"batch_size": [500]}), None, "an entry point")  # size unknown


def test_init_saved_needs_weights() -> None:
    with pytest.raises(InvalidSpec, match="init: saved needs saved weights"):
        check_init(_spec(init="saved"), False, "workload:1:m")
    check_init(_spec(init="saved"), True, "workload:1:m")
    check_init(_spec(), False, "workload:1:m")
