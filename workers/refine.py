"""Edge refinement (``refine_edge: {rounds: K}``): once a sweep's grid is done,
enqueue configurations bisecting each edge bracket in log-lr, round by round.

Each round trains one configuration per bracketed edge and halves the
bracket's log-width, so K rounds sharpen the edge 2^K-fold in log space for K
configurations per edge, where a grid that fine would cost 2^K.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from service.core import optuna_tables
from service.core.analysis import refine_candidates
from service.core.db import Database
from service.core.models import Config, Sweep
from service.core.repo.sweeps import enqueue_configs
from service.core.sweep_analysis import build_data
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo

log = logging.getLogger(__name__)


def maybe_refine(db: Database, sweep_id: int) -> bool:
    """Enqueue the next refinement round when the sweep's work is done; True if it did."""
    with db.transaction() as s:
        sweep = s.get(Sweep, sweep_id, with_for_update=True)
        if sweep is None or sweep.state not in ("queued", "running"):
            return False
        rounds = int((sweep.spec.get("refine_edge") or {}).get("rounds", 0))
        if sweep.refine_round >= rounds or sweep.sampler != "grid":
            return False
        pending = s.scalar(
            select(func.count()).select_from(Config).where(
                Config.sweep_id == sweep_id, Config.state.in_(("waiting", "running"))
            )
        )
        if pending:
            return False
        data = build_data(sweeps_repo.get_sweep(s, sweep_id=sweep_id), runs_repo.run_rows(s, sweep_id=sweep_id))
        candidates = refine_candidates(data.edges())
        sweep.refine_round += 1
        if not candidates:
            log.info("sweep %s: no bracketed edge left to refine", sweep_id)
            return False
        configs = [c["params"] for c in candidates]
        dims: dict[str, list[object]] = {}
        for p in [*configs, *(pt.params for pt in data.points)]:
            for k, v in p.items():
                dims.setdefault(k, [])
                if v not in dims[k]:
                    dims[k].append(v)
        added = enqueue_configs(
            s,
            sweep_id=sweep_id,
            study_id=sweep.study_id,
            configs=configs,
            distributions=optuna_tables.grid_distributions(dims),
            refine_round=sweep.refine_round,
        )
        sweep.n_configs += added
        log.info("sweep %s: refinement round %s enqueued %s configurations", sweep_id, sweep.refine_round, added)
        return added > 0
