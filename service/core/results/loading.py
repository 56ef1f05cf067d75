"""Reading a sweep's runs through the repositories into ``SweepData``, cached or not."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.core.repo import analysis_rows as rows_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.results.cache import AnalysisCache
from service.core.results.sweep_data import SweepData, build_data


def load(session: Session, *, sweep_id: int, cache: AnalysisCache) -> SweepData:
    """The sweep's data, from ``cache`` while its finished runs, state and size are unchanged.

    So a dashboard polling a finished 10,000-run sweep recomputes nothing.
    """
    sweep = sweeps_repo.get_sweep(session, sweep_id=sweep_id)
    hit = cache.get(session, sweep)
    if hit is not None:
        return hit
    data = build_data(
        sweep,
        rows_repo.analysis_rows(session, sweep_id=sweep_id),
        rows_repo.refined_configs(session, sweep_id=sweep_id),
    )
    cache.put(session, sweep, data)
    return data


def load_uncached(session: Session, *, sweep_id: int) -> SweepData:
    """The sweep's data read afresh, for a caller that reads it once (storing a finished sweep's report)."""
    return build_data(
        sweeps_repo.get_sweep(session, sweep_id=sweep_id),
        rows_repo.analysis_rows(session, sweep_id=sweep_id),
        rows_repo.refined_configs(session, sweep_id=sweep_id),
    )
