"""Claiming: racing workers, the fair-share pack size, sampler sweeps through ask()."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from service.core.config import Settings
from service.core.db import Database
from service.core.records import RunSlot
from service.core.repo import workers as workers_repo
from service.core.repo.models import Config, Run, Sweep, Worker
from service.core.spec import SweepSpec
from service.core.work.claims import claim, pack_size
from tests.helpers import new_sweep


@pytest.mark.parametrize(
    ("waiting", "n_seeds", "live_workers", "max_replicas", "expected"),
    [
        (10, 8, 2, 64, 4),  # 80 replicas / 2 workers = 40 -> bucket 32 -> 4 configurations
        (6, 8, 2, 64, 2),  # 48 / 2 = 24 -> 16
        (4, 8, 2, 64, 2),  # 32 / 2 = 16 -> 16
        (2, 8, 2, 64, 1),  # 16 / 2 = 8 -> 8
        (1, 8, 2, 64, 1),  # never fewer than one configuration
        (10, 8, 1, 8, 1),  # max_replicas bounds the pack
        (10, 16, 1, 8, 1),  # one configuration even when its seeds alone exceed the cap
        (100, 1, 1, 64, 64),  # one worker: the cap
        (100, 1, 3, 64, 32),  # 100 / 3 rounds up to 34 -> bucket 32
        (0, 2, 1, 64, 1),  # nothing counted (never happens when claiming) still takes one
    ],
)
def test_pack_size_is_the_fair_share_rounded_down_to_a_bucket(
    waiting: int, n_seeds: int, live_workers: int, max_replicas: int, expected: int
) -> None:
    assert (
        pack_size(waiting=waiting, n_seeds=n_seeds, live_workers=live_workers, max_replicas=max_replicas)
        == expected
    )


def test_pack_sizes_shrink_as_a_sweep_drains_and_add_up_to_it() -> None:
    waiting, sizes = 10, []
    while waiting:
        size = min(waiting, pack_size(waiting=waiting, n_seeds=8, live_workers=2, max_replicas=64))
        sizes.append(size)
        waiting -= size
    assert sizes == [4, 2, 2, 1, 1]


def test_racing_workers_never_claim_the_same_trial(db: Database, settings: Settings) -> None:
    new_sweep(
        db, settings, space={"learning_rate": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "batch_size": [1, 2, 3, 4, 5, 6]}
    )
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        with db.transaction() as s:
            workers_repo.register(s, worker_id=name, hostname="h", pid=0, device="cpu")
        while True:
            got = claim(db, name, max_replicas=2)
            if not got:
                return
            with lock:
                claimed.extend((name, c.trial_id) for c in got)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trial_ids = [t for _, t in claimed]
    assert len(trial_ids) == 30 and len(set(trial_ids)) == 30
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 60
        assert s.scalar(select(func.count()).where(Config.state == "running")) == 30


def test_claims_split_a_sweep_evenly_over_live_workers(db: Database, settings: Settings) -> None:
    """10 configurations x 8 seeds, two live workers: packs shrink as the sweep drains.

    Each claim takes the fair share of what is still waiting (half of it here), rounded
    down to a full pack bucket: 32 of 80, 16 of 48, 16 of 32, 8 of 16, the last 8
    (guided self-scheduling). Neither worker takes most of the sweep while the other idles
    (rounding up gave 64 and 16), and the last packs are the smallest, so the workers'
    finishing times even out.
    """
    new_sweep(
        db,
        settings,
        seeds=8,
        space={
            "optimizer": ["adam"],
            "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
            "batch_size": [4],
            "beta_1": [0.5, 0.9],
        },
    )
    sizes = []
    for worker in ("a", "b", "b", "b", "a"):
        sizes.append(len(claim(db, worker, max_replicas=64, live_workers=2)) * 8)
    assert sizes == [32, 16, 16, 8, 8]
    assert claim(db, "a", max_replicas=64, live_workers=2) == []
    # max_replicas still bounds a pack: one configuration at a time when it is a single seed set.
    new_sweep(db, settings, seeds=8, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]})
    assert len(claim(db, "a", max_replicas=8, live_workers=1)) == 1


def test_a_claim_carries_the_parsed_spec_and_named_run_slots(db: Database, settings: Settings) -> None:
    sweep_id = new_sweep(db, settings, seeds=3, space={"learning_rate": [1e-3], "batch_size": [4]})
    with db.transaction() as s:
        workers_repo.register(s, worker_id="w", hostname="h", pid=0, device="cpu")
    (taken,) = claim(db, "w")
    assert isinstance(taken.spec, SweepSpec) and taken.spec.epochs == taken.epochs == 3
    assert [r.seed for r in taken.runs] == [0, 1, 2]
    assert all(isinstance(r, RunSlot) for r in taken.runs)
    with db.transaction() as s:
        rows = s.execute(select(Run.id, Run.init_seed, Run.data_seed, Run.status).order_by(Run.seed)).all()
        sweep = s.get(Sweep, sweep_id)
        worker = s.get(Worker, "w")
        assert sweep is not None and worker is not None
        assert sweep.state == "running"
        assert (worker.state, worker.current_trial_id) == ("training", taken.trial_id)
    assert [(r.run_id, r.init_seed, r.data_seed) for r in taken.runs] == [
        (r.id, r.init_seed, r.data_seed) for r in rows
    ]
    assert {r.status for r in rows} == {"running"}


def test_sampler_sweeps_are_claimed_through_ask_up_to_n_trials(db: Database, settings: Settings) -> None:
    sweep_id = new_sweep(
        db,
        settings,
        space={"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, "batch_size": [4, 8]},
        sampler={"type": "random", "n_trials": 3, "seed": 1},
    )
    taken = [c for _ in range(4) for c in claim(db, "w", max_replicas=8)]
    assert len(taken) == 3 and len({c.trial_id for c in taken}) == 3
    for c in taken:
        assert 1e-4 <= c.params["learning_rate"] <= 1e-1 and c.params["batch_size"] in (4, 8)
        assert c.params["optimizer"] == "rmsprop" and len(c.runs) == 2  # the preset's default
    with db.transaction() as s:
        sweep = s.get(Sweep, sweep_id)
        assert sweep is not None and (sweep.state, sweep.trials_asked) == ("running", 3)
        assert s.scalar(select(func.count()).where(Config.state == "running")) == 3
