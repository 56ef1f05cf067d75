"""service/core/results/loading.py: the collector pause around a bulk read restores what it found."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from service.core.config import Settings
from service.core.db import Database
from service.core.results import loading
from service.core.sweeps import create_sweep, parse_spec
from tests.conftest import small_spec


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_load_pauses_the_collector_and_restores_it(
    db: Database, settings: Settings, collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep, _ = create_sweep(db, settings, parse_spec(small_spec()))
    seen: list[bool] = []
    real = loading.build_data

    def watched(*args: Any, **kwargs: Any) -> Any:  # records the collector's state while summarising
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "build_data", watched)
    with db.transaction() as s:
        data = loading.load_uncached(s, sweep_id=sweep.id)
    assert data.sweep.id == sweep.id
    assert seen == [False] and gc.isenabled()


def test_overlapping_pauses_restore_the_collector_once_the_last_ends(collector_on: None) -> None:
    first_in, second_done = threading.Event(), threading.Event()
    states: list[bool] = []

    def first() -> None:
        with loading._collector_paused():
            first_in.set()
            second_done.wait(5)
            states.append(gc.isenabled())  # the second ended first: still paused for this one

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with loading._collector_paused():
        states.append(gc.isenabled())
    second_done.set()
    t.join(5)
    assert states == [False, False] and gc.isenabled()


def test_a_collector_off_before_stays_off(collector_on: None) -> None:
    gc.disable()
    with loading._collector_paused():
        pass
    assert not gc.isenabled()
    gc.enable()
