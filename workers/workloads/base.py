"""The contract every workload (preset, uploaded Keras JSON, entry point) meets.

A workload is a model builder plus deterministic data. It never touches the
database; the worker resolves a sweep's ``workload`` block to one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Arrays ready to train on. Labels are one-hot (categorical) or integer."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


class Workload(Protocol):
    name: str
    # A built-in Keras loss: its name, or its serialized config as JSON (service.core.losses).
    loss: str
    # Number of classes for classifiers; 0 for regression (no accuracy, no chance level).
    num_classes: int
    # Optimizer settings the user of the report had (e.g. rmsprop, lr 1e-3); a
    # sweep's params override them key by key.
    default_params: dict[str, Any]

    def dataset(self) -> Dataset:
        """Deterministic for the workload's parameters (data generation seed included)."""

    def build_model(self) -> Any:
        """A fresh, uncompiled ``keras.Model``; weights come from the caller's seed."""
