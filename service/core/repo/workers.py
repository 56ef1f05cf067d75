"""Worker registry: each worker process has a row it heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.core.records import WorkerRecord
from service.core.repo.models import Worker
from service.core.states import WorkerState
from service.core.timeutil import aware, utcnow


def register(session: Session, *, worker_id: str, hostname: str, pid: int, device: str) -> None:
    now = utcnow()
    session.merge(
        Worker(
            id=worker_id,
            hostname=hostname,
            pid=pid,
            device=device,
            state=WorkerState.IDLE,
            started_at=now,
            heartbeat_at=now,
            trials_done=0,
            train_seconds=0.0,
            busy_seconds=0.0,
        )
    )


def set_state(
    session: Session,
    *,
    worker_id: str,
    state: str,
    add_train_seconds: float = 0.0,
    add_busy_seconds: float = 0.0,
) -> None:
    values: dict[str, object] = {
        "state": state,
        "heartbeat_at": utcnow(),
        "train_seconds": Worker.train_seconds + add_train_seconds,
        "busy_seconds": Worker.busy_seconds + add_busy_seconds,
    }
    if state != WorkerState.TRAINING:
        values["current_trial_id"] = None
        values["current_sweep_id"] = None
    session.execute(update(Worker).where(Worker.id == worker_id).values(**values))


def list_workers(session: Session, *, grace_s: float, include_stopped: bool = False) -> list[WorkerRecord]:
    cutoff = utcnow() - timedelta(seconds=grace_s)
    q = select(Worker).order_by(Worker.started_at)
    out = []
    for w in session.scalars(q):
        hb = aware(w.heartbeat_at)
        assert hb is not None
        alive = w.state != WorkerState.STOPPED and hb >= cutoff
        if not alive and not include_stopped:
            continue
        out.append(
            WorkerRecord(
                id=w.id,
                hostname=w.hostname,
                pid=w.pid,
                device=w.device,
                state=w.state if alive else WorkerState.STOPPED,
                current_trial_id=w.current_trial_id,
                current_sweep_id=w.current_sweep_id,
                started_at=aware(w.started_at),  # type: ignore[arg-type]
                heartbeat_at=hb,
                trials_done=w.trials_done,
                train_seconds=w.train_seconds,
                busy_seconds=w.busy_seconds,
                alive=alive,
            )
        )
    return out


def mark_training(session: Session, *, worker_id: str, trial_id: int, sweep_id: int, now: datetime) -> None:
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(
            state=WorkerState.TRAINING, current_trial_id=trial_id, current_sweep_id=sweep_id, heartbeat_at=now
        )
    )


def touch(session: Session, *, worker_id: str, now: datetime) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))


def count_trial_done(session: Session, *, worker_id: str) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(trials_done=Worker.trials_done + 1))
