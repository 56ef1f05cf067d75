"""A grid sweep's configurations: every combination of the values the spec names.

Parameters that do not apply to an optimizer (beta_2 for sgd) do not multiply
the grid, and are left out of that optimizer's configurations.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from service.core.spec import SweepSpec
from service.core.spec_space import APPLIES_TO, DIMENSIONS, OPTIMIZERS, Dimension, Range, Values


def dimension_values(dim: Dimension | None) -> list[Any] | None:
    if dim is None:
        return None
    if isinstance(dim, Range):
        return dim.grid()
    if isinstance(dim, Values):
        return list(dim.values)
    return list(dim)


def _normalise(name: str, v: Any) -> Any:
    if name == "batch_size":
        return int(v)
    if name in ("optimizer", "schedule", "nesterov", "shuffle"):
        return v
    return float(v)


def swept_values(spec: SweepSpec) -> dict[str, list[Any]]:
    """Every dimension the spec names, with its (normalised) grid values."""
    out: dict[str, list[Any]] = {}
    for name in DIMENSIONS:
        vals = dimension_values(getattr(spec.space, name))
        if vals is not None:
            out[name] = [_normalise(name, v) for v in vals]
    return out


def iter_grid(spec: SweepSpec, default_optimizer: str) -> Iterator[dict[str, Any]]:
    """Configurations of a grid sweep, each a dict of the swept parameters.

    The optimizer is always present (the workload's default when not swept)
    so that every configuration says what it trains with. A dimension that
    does not apply to a configuration's optimizer is left out of it.
    """
    values = swept_values(spec)
    optimizers = values.pop("optimizer", [default_optimizer])
    for opt in optimizers:
        names = [n for n in values if opt in APPLIES_TO.get(n, OPTIMIZERS)]
        for combo in itertools.product(*(values[n] for n in names)):
            cfg: dict[str, Any] = {"optimizer": opt}
            cfg.update(zip(names, combo, strict=True))
            yield cfg


def count_grid(spec: SweepSpec, default_optimizer: str) -> int:
    values = swept_values(spec)
    optimizers = values.pop("optimizer", [default_optimizer])
    total = 0
    for opt in optimizers:
        n = 1
        for name, vals in values.items():
            if opt in APPLIES_TO.get(name, OPTIMIZERS):
                n *= len(vals)
        total += n
    return total
