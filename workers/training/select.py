"""Pick the trainer for a workload: a pack when it can be packed, else one replica at a time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from workers.training.types import Trainer
from workers.workloads.base import Workload

log = logging.getLogger(__name__)
_warned: set[str] = set()


def make_trainer(
    workload: Workload,
    *,
    schedule_options: Mapping[str, Any],
    record_steps: bool,
    device: str,
    max_replicas: int,
) -> Trainer:
    from workers.training.packs import PackTrainer, can_pack
    from workers.training.single import SingleTrainer

    ok, reason = can_pack(workload)
    if ok:
        # max_replicas (Settings.pack_max_replicas) caps the pack; PackTrainer sizes each pack
        # from the workload and the device's memory (choose_pack_size) below that cap.
        return PackTrainer(
            max_replicas=max_replicas,
            schedule_options=schedule_options,
            record_steps=record_steps,
            device=device,
        )
    if workload.name not in _warned:
        _warned.add(workload.name)
        log.warning(
            "workload %s cannot be packed (%s); training one replica at a time", workload.name, reason
        )
    return SingleTrainer(schedule_options=schedule_options, record_steps=record_steps, device=device)
