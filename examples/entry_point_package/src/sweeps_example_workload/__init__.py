"""Two interleaved spirals classified by a small MLP: an example entry-point workload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

__all__ = ["TwoSpirals", "make_workload"]

DEFAULTS: dict[str, Any] = {"n": 400, "noise": 0.2, "hidden": 32, "data_seed": 0}


class TwoSpirals:
    """Meets ``workers.workloads.base.Workload``: deterministic data plus a fresh model."""

    name = "two_spirals"
    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-2, "batch_size": 32}

    def __init__(self, params: Mapping[str, Any]) -> None:
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ValueError(
                f"two_spirals has no parameter {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}"
            )
        self.params = {**DEFAULTS, **params}

    def dataset(self) -> Any:
        from workers.workloads.base import Dataset  # the service's own type, present on every worker

        p = self.params
        rng = np.random.default_rng(int(p["data_seed"]))
        half = int(p["n"]) // 2
        t = np.sqrt(rng.uniform(0.0, 1.0, size=half)) * 3 * np.pi
        arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
        x = np.concatenate([arm, -arm]) + float(p["noise"]) * 0.1 * rng.standard_normal((2 * half, 2))
        y = np.repeat(np.arange(2), half)
        perm = rng.permutation(2 * half)
        return Dataset(x[perm].astype(np.float32), y[perm].astype(np.int64))

    def build_model(self) -> Any:
        h = int(self.params["hidden"])
        return keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(h, activation="tanh"),
                keras.layers.Dense(h, activation="tanh"),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )


def make_workload(params: Mapping[str, Any]) -> TwoSpirals:
    """The entry point: the sweep's ``workload.params`` -> a workload."""
    return TwoSpirals(params)
