"""The diagnosis headline of each sweep on the list page, cached so a list page re-analyses nothing.

The app owns one cache (``app.state.headlines``). Entries are keyed by the
database's URL as well as the sweep, so two databases served from one process
never read each other's headlines, and by the sweep's finished-run count and
state, which change whenever the headline could.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from service.core.db import Database
from service.core.records import SweepRecord
from service.core.results.loading import load
from service.core.states import ACTIVE_SWEEP_STATES

_SIZE = 4096


class HeadlineCache:
    def __init__(self, size: int = _SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int, int, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def headline(self, db: Database, sweep: SweepRecord) -> str:
        if sweep.runs_done == 0:
            return "No finished runs yet." if sweep.state in ACTIVE_SWEEP_STATES else "No finished runs."
        key = (str(db.url), sweep.id, sweep.runs_done, str(sweep.state))
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        with db.transaction() as s:
            text = load(s, sweep_id=sweep.id, cache=db.analysis_cache).report().headline
        with self._lock:
            self._entries[key] = text
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return text
