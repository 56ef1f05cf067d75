"""Checks of a sweep spec that need its workload: made at submission, each a 422 that says why.

- A dimension the space varies must exist in the optimizer it applies to: with
  no ``optimizer`` in the space every configuration uses the workload's
  (compiled, or the preset's) optimizer, and varying ``beta_1`` for SGD would
  vary nothing.
- A ``batch_size`` larger than the training set is refused, naming the set's
  size (it would silently train full-batch).
- ``init: saved`` needs saved weights (a workload uploaded as ``.keras`` with
  weights).
- ``record_sharpness.products: difference`` is refused for a model whose
  gradient jumps (``kinks``: ReLU, max pooling), where a difference of
  gradients is no curvature.
"""

from __future__ import annotations

from service.core.errors import InvalidSpec
from service.core.spec import SweepSpec
from service.core.spec_space import APPLIES_TO, DIMENSIONS, OPTIMIZERS, Dimension, Range, Values


def check_dimensions_apply(spec: SweepSpec, default_optimizer: str, origin: str) -> None:
    if spec.space.optimizer is not None:
        return
    for name in DIMENSIONS:
        if getattr(spec.space, name) is None:
            continue
        applies = APPLIES_TO.get(name, OPTIMIZERS)
        if default_optimizer not in applies:
            raise InvalidSpec(
                f"space.{name}: the sweep trains with {origin} {default_optimizer}, which has no {name} "
                f"({name} belongs to {', '.join(applies)}); remove it from the space or add "
                f"`optimizer: [{applies[0]}]`"
            )


def _largest(dim: Dimension | None) -> float | None:
    if dim is None:
        return None
    if isinstance(dim, Range):
        return dim.high
    values = dim.values if isinstance(dim, Values) else dim
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


def check_batch_size(spec: SweepSpec, n_train: int | None, workload: str) -> None:
    if n_train is None:
        return
    largest = _largest(spec.space.batch_size)
    if largest is not None and largest > n_train:
        raise InvalidSpec(
            f"space.batch_size: {largest:g} is larger than the training set of {workload}, which has "
            f"{n_train} examples; use batch sizes up to {n_train} ({n_train} is full-batch training)"
        )


def check_init(spec: SweepSpec, has_weights: bool, workload: str) -> None:
    if spec.init == "saved" and not has_weights:
        raise InvalidSpec(
            f"init: saved needs saved weights, and {workload} has none; upload the model with its weights "
            "(model.save('m.keras') to POST /v1/workloads/keras) or use init: seeded"
        )


def check_products(spec: SweepSpec, kinked: str | None, workload: str) -> None:
    options = spec.record_sharpness
    if options is None or options.products != "difference" or kinked is None:
        return
    raise InvalidSpec(
        f"record_sharpness.products: difference needs a model whose gradient does not jump, and {workload} "
        f"has {kinked}: a difference of gradients across a kink is no curvature (docs/sharpness.md); "
        "use products: exact for this model"
    )
