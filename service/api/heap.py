"""The API process's heap, settled once the application is built.

A cold analysis of a 10,000-run sweep leaves ~100,000 objects behind (the
analysis cache keeps them), so every two or three cold requests CPython's
cyclic garbage collector runs a full collection, and a full collection walks
every container the process holds, the ~130,000 that importing FastAPI,
SQLAlchemy, Optuna and NumPy left as well. That walk was 73-83 ms of one cold
report in three (``benchmarks/bench_analysis.py``: cold max 430 ms beside a
280 ms median). Objects that exist once the app is built live as long as the
process, so moving them to the permanent generation (``gc.freeze``, meant for
this) leaves full collections walking only what requests made: 7-13 ms.
Reference counting still frees frozen objects; only cycles among them would
stay, and modules, classes and routes are not garbage.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect what start-up left as garbage, then exempt the rest from later collections.

    Call once per serving process, after the app is built and before it takes requests
    (``sweeps serve`` does); returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
