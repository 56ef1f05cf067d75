"""The background service for a Python process without a server: `sweeps serve` on a temporary
SQLite file with local workers, in its own process group, stopped with everything it started."""

from __future__ import annotations

import os

import pytest

from stability_sweeps import Client, EmbeddedServiceError, embedded
from tests.conftest import small_spec
from tests.helpers import processes_with


@pytest.mark.slow
def test_starts_accepts_writes_without_a_token_and_stops_its_whole_group() -> None:
    service = embedded.start(workers=1)
    try:
        assert (
            service.url.startswith("http://127.0.0.1:")
            and os.getpgid(service.process.pid) == service.process.pid
        )
        assert (service.workdir / "sweeps.db").exists()
        with Client(service.url) as c:  # no token: the service listens on loopback only
            assert c.ready()
            assert c.submit(small_spec()).cancel().state == "cancelled"
        assert len(processes_with(group=service.process.pid)) >= 2  # the API and its worker
    finally:
        service.stop()
    assert processes_with(group=service.process.pid) == [] and not service.workdir.exists()
    service.stop()  # twice is harmless (atexit calls it again)


def test_a_service_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPS_WORKERS", "many")  # not a number: `sweeps serve` exits at once
    with pytest.raises(EmbeddedServiceError, match=r"exited with status \d+:(.|\n)*workers"):
        embedded.start()
