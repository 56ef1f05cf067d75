"""While training: the ownership guard, heartbeats and the curve points of each epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.core.db import Database
from service.core.records import CurvePoint
from service.core.repo import configs as configs_repo
from service.core.repo import runs as runs_repo
from service.core.repo import workers as workers_repo
from service.core.timeutil import utcnow


@dataclass(frozen=True)
class GuardResult:
    owned: set[int]  # config ids still owned by the caller
    cancelled: set[int]  # owned configs whose sweep was cancelled


def guard(session: Session, owned: Mapping[int, int]) -> GuardResult:
    """Refresh the heartbeats of the caller's configurations ({config id: trial id}) and
    report which it still owns; the first statement of every worker write."""
    now = utcnow()
    still = {
        config_id
        for config_id, trial_id in owned.items()
        if configs_repo.guard(session, config_id=config_id, trial_id=trial_id, now=now)
    }
    return GuardResult(owned=still, cancelled=configs_repo.in_cancelled_sweeps(session, config_ids=still))


def heartbeat(db: Database, worker_id: str, owned: Mapping[int, int]) -> GuardResult:
    with db.transaction() as s:
        result = guard(s, owned)
        workers_repo.touch(s, worker_id=worker_id, now=utcnow())
        return result


def record_epoch(
    db: Database, owned: Mapping[int, int], points: Sequence[tuple[int, CurvePoint]]
) -> GuardResult:
    """One transaction for an epoch of a whole pack: (run id, point) pairs of owned configurations only.

    Non-finite values are stored as NULL (the run's status says it went non-finite).
    """
    with db.transaction() as s:
        result = guard(s, owned)
        runs_repo.add_curve_points(s, points=points, config_ids=result.owned)
        return result
