"""service/core/states.py: one spelling per state, and the enums behave as the strings the database stores."""

from __future__ import annotations

import json

from service.core.states import ACTIVE_SWEEP_STATES, ConfigState, RunStatus, SweepState, WorkerState


def test_the_spellings() -> None:
    assert [s.value for s in SweepState] == ["queued", "running", "completed", "failed", "cancelled"]
    assert [s.value for s in ConfigState] == [
        "waiting",
        "running",
        "reaping",
        "completed",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in RunStatus] == ["running", "completed", "nonfinite", "cancelled", "error"]
    assert [s.value for s in WorkerState] == ["idle", "training", "stopped"]
    assert ACTIVE_SWEEP_STATES == (SweepState.QUEUED, SweepState.RUNNING)


def test_states_are_their_stored_strings() -> None:
    assert ConfigState.COMPLETED == "completed" and "completed" == RunStatus.COMPLETED
    assert str(SweepState.RUNNING) == "running" and f"{WorkerState.IDLE}" == "idle"
    assert json.dumps({"state": ConfigState.WAITING}) == '{"state": "waiting"}'
    assert RunStatus("nonfinite") is RunStatus.NONFINITE
    assert {SweepState.FAILED: 1}["failed"] == 1  # hashes like the string
