from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.core.spec import SweepSpec, seed_pairs


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
        ({"learning_rate": {"low": 1.0, "high": 0.1, "points": 3}}, "high"),
    ],
)
def test_bad_space_is_rejected_with_the_field_named(space: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _spec(space=space)
    assert field in str(info.value)
