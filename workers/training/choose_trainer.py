"""Pick the trainer for a workload: a pack when it can be packed, else one replica at a time."""

from __future__ import annotations

import logging
from typing import Any

from workers.training.interface import Trainer
from workers.training.training_plan import TrainingPlan
from workers.workloads.base import Workload

log = logging.getLogger(__name__)


class TrainerChooser:
    """Builds each claim's trainer; owns what those trainers share across claims.

    A worker keeps one chooser: the pack trainers it builds share one cache of
    compiled functions and workloads' data (compiling costs seconds per
    architecture), and a workload that cannot be packed is reported once, not
    once per claim.
    """

    def __init__(self, *, device: str, max_replicas: int) -> None:
        self.device = device
        self.max_replicas = max_replicas
        self._caches: Any = None  # packs.caches.PackCaches, made on first use (it needs TensorFlow)
        self._warned: set[str] = set()

    def trainer_for(self, workload: Workload, plan: TrainingPlan) -> Trainer:
        # TensorFlow loads with the trainers, not with this module.
        from workers.training.packs import PackTrainer, can_pack
        from workers.training.packs.caches import PackCaches
        from workers.training.single import SingleTrainer

        if self._caches is None:
            self._caches = PackCaches()
        ok, reason = can_pack(workload, self._caches.workloads)
        if ok:
            # max_replicas (Settings.pack_max_replicas) caps the pack; PackTrainer sizes each pack
            # from the workload and the device's memory (choose_pack_size) below that cap.
            return PackTrainer(
                max_replicas=self.max_replicas, plan=plan, device=self.device, caches=self._caches
            )
        if workload.name not in self._warned:
            self._warned.add(workload.name)
            log.warning(
                "workload %s cannot be packed (%s); training one replica at a time", workload.name, reason
            )
        return SingleTrainer(plan=plan, device=self.device, fallback_reason=reason)
