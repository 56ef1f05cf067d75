"""The service in the background for the life of this Python process, when there is no server:
``sweeps serve`` on a SQLite file in a temporary folder, with local workers, on a free port of
127.0.0.1, accepting writes without a token (it listens on loopback only). It runs in its own
process group, so that stopping it at exit stops its workers too."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from stability_sweeps.errors import EmbeddedServiceError

_ROOT = Path(__file__).resolve().parent.parent  # where service/ is, installed or in a checkout
_shared: EmbeddedService | None = None


@dataclass
class EmbeddedService:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the whole group (workers release their trials), SIGKILL what is left."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*, workers: int | None = None, timeout_s: float = 180.0) -> EmbeddedService:
    """Start ``sweeps serve`` and wait until it answers ``/readyz``. ``workers`` defaults to
    ``SWEEPS_WORKERS`` if set, else half the CPU cores (at least one, at most four)."""
    workdir = Path(tempfile.mkdtemp(prefix="stability-sweeps-"))
    port = _free_port()
    cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--open-writes"]
    cmd += ["--database-url", f"sqlite:///{workdir / 'sweeps.db'}"]
    if workers is None and "SWEEPS_WORKERS" not in os.environ:
        workers = min(4, max(1, (os.cpu_count() or 2) // 2))
    if workers is not None:
        cmd += ["--workers", str(workers)]
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)
    # Its pages and reads are for this process only (loopback): no token, whatever the shell says.
    env = {**os.environ, "PYTHONPATH": path, "SWEEPS_READ_ACCESS": "public", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with (workdir / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    service = EmbeddedService(url=f"http://127.0.0.1:{port}", process=proc, workdir=workdir)
    atexit.register(service.stop)
    _wait_ready(service, timeout_s)
    return service


def _wait_ready(service: EmbeddedService, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            tail = service.log.read_text(errors="replace")[-2000:]
            service.stop()
            raise EmbeddedServiceError(
                f"the background service exited with status {service.process.returncode}:\n{tail}"
            )
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    service.stop()
    raise EmbeddedServiceError(f"the background service did not answer at {service.url} in {timeout_s:g} s")


def shared() -> EmbeddedService:
    """The one background service of this process, started on first use."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = start()
    return _shared


def stop_shared() -> None:
    """Stop the background service now rather than at exit (the next ``shared()`` starts a new one)."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
