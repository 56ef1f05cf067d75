"""How many rows a guarded UPDATE changed: 1 means the caller's compare-and-set won."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult


def changed(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
