"""The worker loop's sense of time, injectable so that its timing decisions can be unit-tested.

The loop asks a clock what time it is (flush, reap and idle intervals) and
sleeps through it (the idle poll, the back-off after an error, the heartbeat
period). Both go through this Protocol: the real worker uses the system's
monotonic clock; tests use a virtual one (tests/workers/fake_clock.py) so that a
minute of idling takes no time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when ``event`` is set; True if it is set."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)
