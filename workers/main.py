"""Worker process entry point: configure the device, install signal handlers, run the loop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from service.core.config import Settings
from service.core.connections import ConnectionBudget
from service.core.db import Database
from workers.loop import WorkerLoop

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    *,
    device: str | None = None,
    threads: int = 1,
    max_idle_s: float | None = None,
    max_configs: int | None = None,
    stop: threading.Event | None = None,
) -> WorkerLoop:
    from workers.device import configure_device

    described = configure_device(device or settings.device, threads=threads)
    db = Database(settings.database_url, ConnectionBudget.from_settings(settings))
    loop = WorkerLoop(db=db, settings=settings, device=described)
    if stop is not None:
        loop.stopping = stop

    def _graceful(signum: int, _frame: FrameType | None) -> None:
        # Finish the current epoch, then release unfinished configurations.
        log.info("signal %s: stopping after the current epoch", signum)
        loop.stopping.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)
    log.info("worker %s on %s", loop.worker_id, described)
    loop.run(max_idle_s=max_idle_s, max_configs=max_configs)
    return loop
