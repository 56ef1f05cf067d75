"""A workload's data as tensors, its stacked plan, and its seeds' initial weights, built once.

Loading a dataset and building a Keras model to plan it cost seconds, so a
``WorkloadDataCache`` keeps them per workload object (weakly: an entry lives
as long as its workload, and another workload object never reads it). The
cache belongs to a trainer, or to the worker for all its trainers
(``packs.caches``).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from workers.training._stacked_model import StackedPlan, Unpackable, plan_model
from workers.training.data_order import build_initial_model
from workers.training.metrics import LabelKind, label_kind

# Initial weights kept per workload (one entry per init seed).
_INIT_CACHE = 1024
_PACKABLE_LOSSES = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mse",
    "mean_squared_error",
)


@dataclass
class WorkloadData:
    """Training (and validation) tensors, label kind and stacked plan of one workload."""

    plan: StackedPlan
    x: tf.Tensor
    y: tf.Tensor
    x_val: tf.Tensor | None
    y_val: tf.Tensor | None
    n: int
    kind: LabelKind
    init_weights: OrderedDict[int, list[np.ndarray]] = field(default_factory=OrderedDict)

    @property
    def n_eval_max(self) -> int:
        """The most examples one full-set evaluation sees (training or validation set)."""
        return max(self.n, int(self.x_val.shape[0]) if self.x_val is not None else 0)


def _labels(y: np.ndarray, kind: LabelKind) -> np.ndarray:
    if kind == "integer":
        return y.reshape(-1).astype(np.int32)
    return y.astype(np.float32, copy=False)


def load_workload_data(workload: Any) -> WorkloadData:
    """The workload's data and stacked plan (raises ``Unpackable`` if it cannot be packed)."""
    ds = workload.dataset()
    x = np.asarray(ds.x_train).astype(np.float32, copy=False)
    kind = label_kind(np.asarray(ds.y_train), int(workload.num_classes))
    model = build_initial_model(workload, 0, x[:1])
    plan, _ = plan_model(model)
    if workload.loss not in _PACKABLE_LOSSES:
        raise Unpackable(f"loss {workload.loss!r} is not supported by training packs")
    has_val = ds.x_val is not None and ds.y_val is not None and len(ds.x_val) > 0
    return WorkloadData(
        plan=plan,
        x=tf.constant(x),
        y=tf.constant(_labels(np.asarray(ds.y_train), kind)),
        x_val=tf.constant(np.asarray(ds.x_val).astype(np.float32, copy=False)) if has_val else None,
        y_val=tf.constant(_labels(np.asarray(ds.y_val), kind)) if has_val else None,
        n=int(x.shape[0]),
        kind=kind,
    )


class WorkloadDataCache:
    """``WorkloadData`` per workload object, built on first use."""

    def __init__(self) -> None:
        self._by_workload: weakref.WeakKeyDictionary[Any, WorkloadData] = weakref.WeakKeyDictionary()
        # Workloads that cannot be weakly referenced (or hashed): the last few, by identity.
        self._by_id: OrderedDict[int, tuple[Any, WorkloadData]] = OrderedDict()

    def get(self, workload: Any) -> WorkloadData:
        """The workload's data and stacked plan (raises ``Unpackable`` if it cannot be packed)."""
        try:
            hit = self._by_workload.get(workload)
        except TypeError:  # unhashable or not weak-referenceable
            entry = self._by_id.get(id(workload))
            hit = entry[1] if entry is not None and entry[0] is workload else None
        if hit is not None:
            return hit
        data = load_workload_data(workload)
        try:
            self._by_workload[workload] = data
        except TypeError:
            self._by_id[id(workload)] = (workload, data)
            while len(self._by_id) > 8:
                self._by_id.popitem(last=False)
        return data


def initial_weights(workload: Any, data: WorkloadData, init_seed: int) -> list[np.ndarray]:
    """The weights ``build_initial_model(workload, init_seed)`` draws, cached per seed.

    Sweeps reuse the same init seeds in every configuration (common random
    numbers), so each seed's model is built once per workload, not once per run.
    """
    hit = data.init_weights.get(init_seed)
    if hit is not None:
        data.init_weights.move_to_end(init_seed)
        return hit
    model = build_initial_model(workload, init_seed, data.x.numpy()[:1])
    plan, weights = plan_model(model)
    if plan.signature != data.plan.signature:
        raise Unpackable("the workload builds models of different architectures for different seeds")
    data.init_weights[init_seed] = weights
    while len(data.init_weights) > _INIT_CACHE:
        data.init_weights.popitem(last=False)
    return weights
