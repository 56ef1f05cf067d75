"""Virtual time for unit tests of the worker loop (the real one is workers.clock.SystemClock)."""

from __future__ import annotations

import threading


class FakeClock:
    """Virtual time that moves only when asked.

    A wait in the thread that made the clock (the test's thread, which runs
    the loop) returns at once and moves time to its deadline, so idling and
    back-offs take no real time. A wait in any other thread (the loop's
    heartbeat thread) blocks until the test or the fake trainer moves time
    past its deadline with ``advance``, or until its event is set.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._owner = threading.get_ident()

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._cond:
            deadline = self._now + timeout
            if threading.get_ident() == self._owner:
                if not event.is_set():
                    self._now = max(self._now, deadline)
                    self._cond.notify_all()
                return event.is_set()
            # Event.set() does not notify our condition: look again every few milliseconds.
            while not event.is_set() and self._now < deadline:
                self._cond.wait(0.002)
            return event.is_set()
