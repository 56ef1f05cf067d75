"""Operations: Prometheus metrics from the real queue and racing idempotent submissions
(the redaction of logs is tested in tests/core/test_logs.py)."""

from __future__ import annotations

import threading

import optuna
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import InvalidSpec
from service.core.records import RunOutcome
from service.core.repo import workers as workers_repo
from service.core.repo.models import Sweep
from service.core.states import RunStatus
from service.core.sweeps import create_sweep, parse_spec
from service.core.work.claims import claim
from service.core.work.finishing import finish_config
from tests.conftest import small_spec


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _outcome(run_id: int) -> RunOutcome:
    return RunOutcome(
        run_id=run_id,
        status=RunStatus.COMPLETED,
        run_class="converged",
        flags=[],
        metrics={},
        epochs_run=3,
        final_loss=0.1,
        final_accuracy=1.0,
    )


def test_metrics_report_queue_runs_durations_workers_and_http(client: TestClient, db: Database) -> None:
    sweep = client.post("/v1/sweeps", json=small_spec()).json()  # 6 configs x 2 seeds
    with db.transaction() as s:
        workers_repo.register(s, worker_id="w-metrics", hostname="h", pid=1, device="cpu")
    claims = claim(db, "w-metrics", max_replicas=2)
    assert len(claims) == 1
    c = claims[0]
    assert finish_config(
        db,
        config_id=c.config_id,
        trial_id=c.trial_id,
        outcomes=[_outcome(r.run_id) for r in c.runs],
        value=0.1,
        intermediate=[(0, 0.1)],
        worker_id="w-metrics",
        train_seconds=0.0,
    )
    claim(db, "w-metrics", max_replicas=2)  # one more running
    client.get("/v1/sweeps/999999")  # a 404 to count

    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    m = _samples(resp.text)
    assert m[("sweeps_queue_depth", ())] == 4
    assert m[("sweeps_configs", (("state", "waiting"), ("sweep_state", "running")))] == 4
    assert m[("sweeps_configs", (("state", "running"), ("sweep_state", "running")))] == 1
    assert m[("sweeps_configs", (("state", "completed"), ("sweep_state", "running")))] == 1
    assert m[("sweeps_runs", (("run_class", "converged"), ("status", "completed")))] == 2
    assert m[("sweeps_runs", (("run_class", ""), ("status", "running")))] == 2
    assert m[("sweeps_trial_duration_seconds_count", ())] == 1
    assert m[("sweeps_trial_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert m[("sweeps_workers_live", ())] == 1
    age = [v for (name, labels), v in m.items() if name == "sweeps_worker_heartbeat_age_seconds"]
    assert len(age) == 1 and 0 <= age[0] < 5
    # HTTP metrics label by route template, so ids never become label values.
    http = "sweeps_http_requests_total"
    assert m[(http, (("method", "GET"), ("route", "/v1/sweeps/{sweep_id}"), ("status", "404")))] == 1
    assert m[(http, (("method", "POST"), ("route", "/v1/sweeps"), ("status", "201")))] == 1
    assert not any("999999" in str(labels) for _, labels in m)
    assert sweep["id"] > 0


def test_metrics_follow_the_read_rule(db: Database, settings: Settings) -> None:
    closed = settings.model_copy(update={"read_access": "token"})
    with TestClient(create_app(closed, db)) as anon:
        assert anon.get("/metrics").status_code == 401


# ---------------------------------------------------------------- idempotency race


def test_racing_requests_with_one_idempotency_key_get_one_sweep(db: Database, settings: Settings) -> None:
    spec = parse_spec(small_spec())
    n = 4
    barrier = threading.Barrier(n)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def submit() -> None:
        barrier.wait()
        try:
            record, created = create_sweep(db, settings, spec, idempotency_key="race-key-1")
            results.append((record.id, created))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len({sid for sid, _ in results}) == 1 and len(results) == n
    assert sum(created for _, created in results) == 1
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Sweep)) == 1
    # The losers' Optuna studies were deleted: no orphan study is left behind.
    assert len(optuna.get_all_study_names(storage=db.url)) == 1


def test_a_replayed_idempotency_key_does_not_skip_the_spec_checks(db: Database, settings: Settings) -> None:
    """Found by schemathesis: the key was looked up first, so a bad spec replaying a used key got 200."""
    first, created = create_sweep(db, settings, parse_spec(small_spec()), idempotency_key="replay-1")
    assert created
    bad = parse_spec(small_spec(stability={"no_such_threshold": 1.0}))
    with pytest.raises(InvalidSpec, match="no_such_threshold"):
        create_sweep(db, settings, bad, idempotency_key="replay-1")
    again, created = create_sweep(db, settings, parse_spec(small_spec()), idempotency_key="replay-1")
    assert again.id == first.id and not created
