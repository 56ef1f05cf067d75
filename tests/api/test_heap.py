"""The serving process's start-up objects leave the cyclic collector's walks (service/api/heap.py).

Run in a fresh interpreter: freezing is process-wide, and pytest's own objects are no subject.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc, json, sys, weakref
from service.api.app import create_app
from service.core.config import Settings
app = create_app(Settings(database_url="sqlite:///" + sys.argv[1], workers=0))
class Box: pass
held, dropped = Box(), Box()
alive = weakref.ref(dropped)
frozen = __import__("service.api.heap", fromlist=["x"]).freeze_startup_objects()
ids = {id(o) for o in gc.get_objects()}
del dropped
print(json.dumps({
    "frozen": frozen,
    "tracked": len(ids),
    "app_tracked": id(app) in ids or id(app.router) in ids,
    "held_tracked": id(held) in ids,
    "dropped_freed": alive() is None,
}))
"""


def test_start_up_objects_are_frozen_and_still_freed_by_reference_counting(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "heap.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    # Importing and building the app leaves ~100,000 containers; a full collection walked them all.
    assert probe["frozen"] > 20_000
    assert probe["tracked"] < probe["frozen"] / 20
    assert not probe["app_tracked"] and not probe["held_tracked"]
    assert probe["dropped_freed"]  # a frozen object with no cycle is freed when its last reference goes
