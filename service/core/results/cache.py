"""Recently analysed sweeps, per database, least recently used dropped first.

An entry is keyed by the database it was read from and by what changes when a
sweep gains results (finished runs, state, number of runs), so a stale or a
foreign entry is never found: another database in the same process (tests
that run on two, a process that serves two) has the same sweep ids but never
the same key. The owner of the database owns the cache (``Database`` creates
one); nothing here is module-global.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from service.core.records import SweepRecord

if TYPE_CHECKING:  # the data module imports the analysis stack; the database needs only this class
    from service.core.results.sweep_data import SweepData

DEFAULT_SIZE = 16  # a dashboard's open sweeps; each entry holds every run of one sweep

# (database, sweep id, finished runs, sweep state, runs in all)
Key = tuple[int, int, int, str, int]


class AnalysisCache:
    """Thread-safe: API requests run in a thread pool and share it."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Key, SweepData] = OrderedDict()
        self._lock = threading.Lock()
        # An engine is one database's connections; a number per engine (never reused,
        # unlike id()) names the database in keys without keeping the engine alive.
        self._databases: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
        self._numbers = itertools.count()

    def get(self, session: Session, sweep: SweepRecord) -> SweepData | None:
        key = self._key(session, sweep)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(self, session: Session, sweep: SweepRecord, data: SweepData) -> None:
        key = self._key(session, sweep)
        with self._lock:
            self._entries[key] = data
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _key(self, session: Session, sweep: SweepRecord) -> Key:
        return (self._database(session), sweep.id, sweep.runs_done, sweep.state, sweep.progress.total)

    def _database(self, session: Session) -> int:
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        with self._lock:
            number = self._databases.get(engine)
            if number is None:
                number = self._databases[engine] = next(self._numbers)
            return number
