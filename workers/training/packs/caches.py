"""What pack trainers keep from one pack to the next.

A ``PackTrainer`` makes its own ``PackCaches`` unless given one; the worker's
``TrainerChooser`` gives one to every pack trainer it builds, so that a
long-lived worker compiles once per architecture and loads each workload's
data once, while two independent trainers in one process never share either
by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.training.packs.compiled import CompiledFunctions
from workers.training.packs.workload_data import WorkloadDataCache


@dataclass
class PackCaches:
    compiled: CompiledFunctions = field(default_factory=CompiledFunctions)
    workloads: WorkloadDataCache = field(default_factory=WorkloadDataCache)
