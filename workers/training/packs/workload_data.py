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
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from service.core.errors import InvalidSpec
from workers.training._stacked_model import StackedPlan, Unpackable, plan_model
from workers.training.data_order import build_initial_model
from workers.training.metrics import per_sample_loss
from workers.training.training_data import TrainingData, load_training_data

# Initial weights kept per workload (one entry per init seed).
_INIT_CACHE = 1024


@dataclass(frozen=True)
class WorkloadData(TrainingData):
    """The workload's data, its stacked plan and the initial weights drawn so far."""

    plan: StackedPlan
    init_weights: OrderedDict[int, list[np.ndarray]] = field(default_factory=OrderedDict)


def load_workload_data(workload: Any) -> WorkloadData:
    """The workload's data and stacked plan (raises ``Unpackable`` if it cannot be packed)."""
    data = load_training_data(workload)
    model = build_initial_model(workload, 0, data.x.numpy()[:1])
    plan, _ = plan_model(model)
    try:
        # Packs compute every loss the single trainer does, with the same per-sample function
        # (workers.training.metrics), on a leading replica axis: any loss it can build is packable.
        per_sample_loss(str(workload.loss))
    except (ValueError, InvalidSpec) as exc:
        raise Unpackable(f"loss {workload.loss!r} is not supported by training packs: {exc}") from None
    return WorkloadData(**{f.name: getattr(data, f.name) for f in fields(TrainingData)}, plan=plan)


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
