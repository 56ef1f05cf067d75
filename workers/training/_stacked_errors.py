"""The error a model raises when it cannot be trained as a weight-stacked pack.

Its own module so that the layer modules (``_stacked_conv``, ``_stacked_pool``)
can raise it without importing ``_stacked_model``, which imports them.
"""

from __future__ import annotations


class Unpackable(ValueError):
    """The model cannot be trained as a weight-stacked pack; the message says why."""
