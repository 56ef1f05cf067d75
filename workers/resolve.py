"""Turn a sweep's stored ``workload`` block into a Workload, cached per process.

Building a workload generates or loads its data, so a long-lived worker keeps
the last few it built (compiled steps are cached by the trainers).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from service.core.db import Database
from service.core.errors import NotFound
from service.core.repo import workloads as workloads_repo
from workers.workloads import registry
from workers.workloads.base import Workload
from workers.workloads.keras_json import KerasJsonWorkload

_CACHE_SIZE = 4


class WorkloadResolver:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: OrderedDict[str, Workload] = OrderedDict()

    def resolve(self, block: dict[str, Any]) -> Workload:
        key = json.dumps(block, sort_keys=True)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        workload = self._build(block)
        self._cache[key] = workload
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return workload

    def _build(self, block: dict[str, Any]) -> Workload:
        if "preset" in block:
            return registry.build_preset(block["preset"], block.get("params", {}))
        if "entry_point" in block:
            return registry.build_entry_point(block["entry_point"], block.get("params", {}))
        workload_id = int(block["id"])
        with self._db.transaction() as s:
            stored = workloads_repo.stored_model(s, workload_id=workload_id)
        if stored is None:
            raise NotFound(f"workload {workload_id} was deleted")
        if stored.npz is None:
            raise NotFound(f"dataset {stored.dataset_id} of workload {workload_id} was deleted")
        saved = block.get("init") == "saved"
        if saved and stored.initial_weights is None:
            raise NotFound(f"workload {workload_id} has no saved weights for init: saved")
        return KerasJsonWorkload(
            model_json=stored.model_json,
            npz_bytes=stored.npz,
            loss=stored.loss,
            name=stored.name,
            # The compiled optimizer and all its settings: what the space does not vary.
            default_params=(stored.compile or {}).get("params"),
            initial_weights=stored.initial_weights if saved else None,
        )
