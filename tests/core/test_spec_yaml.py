"""A YAML spec's numbers read as a person means them (YAML 1.2 floats)."""

from __future__ import annotations

import pytest
import yaml

from service.core.spec import SweepSpec
from service.core.spec_yaml import load_spec_yaml

SPEC = """
name: lr sweep
workload: {preset: least_squares}
epochs: 3
space:
  learning_rate: [1e-3, 1.0e-2, 3E-1, .5]
  batch_size: [8, 16]
"""


def test_exponent_without_a_dot_is_a_float() -> None:
    data = load_spec_yaml(SPEC)
    assert data["space"]["learning_rate"] == [1e-3, 1e-2, 0.3, 0.5]
    assert data["space"]["batch_size"] == [8, 16]  # integers stay integers
    assert yaml.safe_load(SPEC)["space"]["learning_rate"][0] == "1e-3"  # what plain PyYAML gives
    assert SweepSpec.model_validate(data).space.learning_rate is not None


@pytest.mark.parametrize("text", ["v: 1e3", "v: -2.5e-4", "v: .inf"])
def test_other_floats(text: str) -> None:
    assert isinstance(load_spec_yaml(text)["v"], float)


def test_strings_and_versions_stay_strings() -> None:
    data = load_spec_yaml("a: e5\nb: 1.2.3\nc: '1e-3'")
    assert data == {"a": "e5", "b": "1.2.3", "c": "1e-3"}
