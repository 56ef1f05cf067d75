"""The error a model raises when it cannot be trained as a weight-stacked pack, and a check that raises it.

Its own module so that the layer modules (``_stacked_conv``, ``_stacked_pool``)
can raise it without importing ``_stacked_model``, which imports them.
"""

from __future__ import annotations

from typing import Any


class Unpackable(ValueError):
    """The model cannot be trained as a weight-stacked pack; the message says why."""


def static_output_shape(layer: Any) -> tuple[int, ...]:
    """The layer's output shape without the batch axis; every size must be known."""
    shape = tuple(layer.output.shape[1:])
    if any(d is None for d in shape):
        what = f"{type(layer).__name__} {layer.name!r}"
        raise Unpackable(f"{what} has an output of unknown size {shape} (packs need fixed shapes)")
    return tuple(int(d) for d in shape)
