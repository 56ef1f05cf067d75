"""Where a pack trainer's wall time went (the benchmarks and the per-pack log line report these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PackStats:
    """Seconds by phase, summed over a trainer's packs."""

    packs: int = 0
    replica_epochs: int = 0
    compile_s: float = 0.0  # first call of each new compiled function (trace + XLA compile)
    step_s: float = 0.0  # compiled epoch calls, compilations excluded
    eval_s: float = 0.0  # full-set evaluations, compilations excluded
    build_s: float = 0.0  # building/seeding Keras models for initial weights
    host_s: float = 0.0  # everything else inside train(): permutations, records, observer
    observer_s: float = 0.0  # part of host_s spent in the observer
    total_s: float = 0.0
    compiles: int = 0

    def add(self, other: PackStats) -> None:
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))
