"""workers/resolve.py: a sweep's workload block -> a Workload, the last few kept per resolver."""

from __future__ import annotations

import pytest

from service.core.db import Database
from service.core.errors import NotFound
from workers.resolve import WorkloadResolver
from workers.workloads.presets import LeastSquares


def _block(n: int) -> dict[str, object]:
    return {"preset": "least_squares", "params": {"n": n, "d": 2}}


def test_a_preset_block_is_built_once_and_kept(db: Database) -> None:
    resolver = WorkloadResolver(db)
    first = resolver.resolve(_block(8))
    assert isinstance(first, LeastSquares) and first.params["n"] == 8
    # The same block, keys in another order, is the same workload object.
    assert resolver.resolve({"params": {"d": 2, "n": 8}, "preset": "least_squares"}) is first
    assert resolver.resolve(_block(9)) is not first


def test_the_least_recently_used_workload_is_dropped_after_four(db: Database) -> None:
    resolver = WorkloadResolver(db)
    built = {n: resolver.resolve(_block(n)) for n in (4, 5, 6, 7)}
    assert resolver.resolve(_block(4)) is built[4]  # 4 is now the most recently used
    resolver.resolve(_block(8))  # a fifth: 5, the least recently used, goes
    assert resolver.resolve(_block(4)) is built[4]
    assert resolver.resolve(_block(5)) is not built[5]


def test_a_deleted_uploaded_workload_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="workload 12345 was deleted"):
        WorkloadResolver(db).resolve({"id": 12345})
