"""KEDA's scaling query (deploy/kubernetes/base/outstanding-replicas.sql) on the real PostgreSQL.

The number it returns, divided by a ScaledObject's pack size, is how many
workers KEDA runs: it must count every replica still to train (waiting and
running, plus a sampler sweep's trials not asked yet) and fall to zero when
sweeps are finished or cancelled. About 2 s.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.core.config import Settings
from service.core.db import Database
from service.core.repo.sweeps import cancel_sweep
from service.core.work.claims import claim
from service.core.work.finishing import maybe_finish_sweep
from tests.conftest import make_settings
from tests.helpers import finish_claim, new_sweep

pytestmark = pytest.mark.postgres

QUERY = (Path(__file__).resolve().parents[2] / "deploy/kubernetes/base/outstanding-replicas.sql").read_text()


def _outstanding(url: str) -> int:
    """Run the query as KEDA does: on its own connection, one number back."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(QUERY)).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def pg(postgres_url: str) -> tuple[Database, Settings]:
    return Database(postgres_url), make_settings(postgres_url)


def test_outstanding_replicas_of_a_grid_sweep_queued_running_and_finished(
    pg: tuple[Database, Settings],
) -> None:
    db, settings = pg
    url = settings.database_url
    assert _outstanding(url) == 0
    # 3 learning rates x 2 batch sizes x 2 seeds = 12 replicas
    sweep_id = new_sweep(db, settings)
    assert _outstanding(url) == 12
    assert math.ceil(_outstanding(url) / 64) == 1  # one CPU worker for this pack
    taken = claim(db, "w1", max_replicas=4)  # running: still outstanding until finished
    assert taken and _outstanding(url) == 12
    finish_claim(db, taken[0], worker_id="w1", final_loss=0.1)
    assert _outstanding(url) == 10
    for c in taken[1:]:
        finish_claim(db, c, worker_id="w1", final_loss=0.1)
    while more := claim(db, "w1", max_replicas=64):
        for c in more:
            finish_claim(db, c, worker_id="w1", final_loss=0.1)
    assert maybe_finish_sweep(db, sweep_id) == "completed"
    assert _outstanding(url) == 0
    db.dispose()


def test_sampler_trials_not_yet_asked_count_and_cancelled_sweeps_do_not(
    pg: tuple[Database, Settings],
) -> None:
    db, settings = pg
    url = settings.database_url
    sweep_id = new_sweep(db, settings, sampler={"type": "random", "n_trials": 3, "seed": 1})
    assert _outstanding(url) == 3 * 2  # nothing asked yet: 3 trials x 2 seeds
    (asked,) = claim(db, "w1")
    assert _outstanding(url) == 6  # one running + two not asked
    finish_claim(db, asked, worker_id="w1", final_loss=0.1)
    assert _outstanding(url) == 4
    with db.transaction() as session:
        cancel_sweep(session, sweep_id=sweep_id)
    assert _outstanding(url) == 0
    db.dispose()
