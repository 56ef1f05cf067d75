"""The lifecycle states of sweeps, configurations, runs and workers: one spelling each.

Values are what the database stores and the API returns. They are ``str``
subclasses so that they compare equal to the stored strings, serialise to
JSON as plain strings and work in SQL ``IN`` clauses unchanged. A
configuration that finished is ``completed``, like a sweep and a run (it was
once spelled ``complete``; migration 0003 rewrote stored rows).
"""

from __future__ import annotations

from enum import Enum


class _State(str, Enum):
    def __str__(self) -> str:  # f-strings and logs show the stored value
        return str(self.value)


class SweepState(_State):
    """queued -> running -> completed | failed; cancelled at any time."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Sweeps that workers still take configurations from.
ACTIVE_SWEEP_STATES: tuple[SweepState, ...] = (SweepState.QUEUED, SweepState.RUNNING)


class ConfigState(_State):
    """waiting -> running -> completed | failed | cancelled; running -> waiting on release or retry.

    ``reaping`` is held only inside the reaper's transaction, so that two
    reapers never both retry one configuration.
    """

    WAITING = "waiting"
    RUNNING = "running"
    REAPING = "reaping"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(_State):
    """How one seed's training ended (``running`` while it trains)."""

    RUNNING = "running"
    COMPLETED = "completed"
    NONFINITE = "nonfinite"
    CANCELLED = "cancelled"
    ERROR = "error"


class WorkerState(_State):
    IDLE = "idle"
    TRAINING = "training"
    STOPPED = "stopped"
