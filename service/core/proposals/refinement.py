"""Edge refinement (``refine_edge: {rounds: K}``): once a sweep's grid is done,
enqueue configurations bisecting each edge bracket in log-lr, round by round.

Each round trains one configuration per bracketed edge and halves the
bracket's log-width, so K rounds sharpen the edge 2^K-fold in log space for K
configurations per edge, where a grid that fine would cost 2^K.
"""

from __future__ import annotations

import logging

from service.core.analysis import refine_candidates
from service.core.db import Database
from service.core.repo import configs as configs_repo
from service.core.repo import optuna_trials
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.analysis_rows import analysis_rows
from service.core.results.sweep_data import build_data
from service.core.spec import SweepSpec
from service.core.states import ACTIVE_SWEEP_STATES, ConfigState

log = logging.getLogger(__name__)


def maybe_refine(db: Database, sweep_id: int) -> bool:
    """Enqueue the next refinement round when the sweep's work is done; True if it did.

    Several workers finish configurations at once and each calls this; the
    round counter is advanced by a compare-and-set UPDATE before anything
    else, so exactly one of them enqueues a round. (``FOR UPDATE`` alone does
    not do it on SQLite, where it is a no-op and reads see no lock.) The
    UPDATE also takes the write lock, so the "nothing pending" check after it
    cannot race a claim or another round.
    """
    with db.transaction() as s:
        sweep = sweeps_repo.get_for_work(s, sweep_id=sweep_id)
        if sweep is None or sweep.state not in ACTIVE_SWEEP_STATES or sweep.sampler != "grid":
            return False
        refine = SweepSpec.model_validate(sweep.spec).refine_edge
        rounds = 0 if refine is None else refine.rounds
        seen = sweep.refine_round
        if seen >= rounds:
            return False
        if not sweeps_repo.advance_refine_round(s, sweep_id=sweep_id, seen=seen):
            return False  # another worker advanced the round first
        pending = configs_repo.count_in_states(
            s, sweep_id=sweep_id, states=(ConfigState.WAITING, ConfigState.RUNNING)
        )
        if pending:
            s.rollback()  # not done yet: give the round back
            return False
        data = build_data(sweeps_repo.get_sweep(s, sweep_id=sweep_id), analysis_rows(s, sweep_id=sweep_id))
        candidates = refine_candidates(data.edges())
        if not candidates:
            # Nothing bracketed (or every bracket at rounding precision): the
            # remaining rounds have nothing to do; mark them spent so the sweep finishes.
            sweeps_repo.spend_refine_rounds(s, sweep_id=sweep_id, rounds=rounds)
            log.info("sweep %s: no bracketed edge left to refine", sweep_id)
            return False
        configs = [c["params"] for c in candidates]
        dims: dict[str, list[object]] = {}
        for p in [*configs, *(pt.params for pt in data.points)]:
            for k, v in p.items():
                dims.setdefault(k, [])
                if v not in dims[k]:
                    dims[k].append(v)
        added = sweeps_repo.enqueue_configs(
            s,
            sweep_id=sweep_id,
            study_id=sweep.study_id,
            configs=configs,
            distributions=optuna_trials.grid_distributions(dims),
            refine_round=seen + 1,
        )
        sweeps_repo.add_configs(s, sweep_id=sweep_id, added=added)
        log.info(
            "sweep %s: refinement round %s/%s enqueued %s configurations (brackets %s)",
            sweep_id,
            seen + 1,
            rounds,
            added,
            [c["bracket"] for c in candidates],
        )
        return added > 0
