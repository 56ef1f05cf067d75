"""Shared plumbing of the preset workloads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from service.core.workloads import PRESETS, resolve_preset_params
from workers.workloads.base import Dataset


def balanced_counts(n: int, k: int) -> list[int]:
    """``n`` split over ``k`` classes as evenly as possible, earlier classes first (98, 6 -> 17,17,16,...)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out: np.ndarray = np.eye(k, dtype=np.float32)[labels]
    return out


class PresetWorkload(ABC):
    """Base of the presets: resolves params against the catalogue and caches the dataset.

    Each preset supplies its data generator and its model builder.
    """

    name: str
    loss: str
    num_classes: int
    default_params: dict[str, Any]

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = resolve_preset_params(self.name, params or {})
        info = PRESETS[self.name]
        self.loss = info.loss
        self.num_classes = info.num_classes
        self.default_params = dict(info.default_params)
        self._dataset: Dataset | None = None

    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self._make_dataset(np.random.default_rng(self.params["data_seed"]))
        return self._dataset

    @abstractmethod
    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        """The preset's data, drawn only from ``rng`` (seeded by ``data_seed``)."""

    @abstractmethod
    def build_model(self) -> Any:
        """A fresh, uncompiled keras.Model."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"
