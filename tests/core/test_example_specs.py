"""Every shipped example sweep is a valid spec for a known workload, as submitted by run_examples.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.core.proposals.grid import iter_grid
from service.core.spec import SweepSpec
from service.core.workloads import resolve_preset_params

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_three_reports_have_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"sensor_lstm", "sequence_rnn", "pixel_color", "demo"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_spec_is_valid(path: Path) -> None:
    spec = SweepSpec.model_validate(yaml.safe_load(path.read_text()))
    preset = getattr(spec.workload, "preset", None)
    if preset is not None:
        resolve_preset_params(preset, spec.workload.params)  # raises on unknown params or values
    assert len(list(iter_grid(spec, "adam"))) >= 1
