"""The invariant every fault test ends with, scoped to one sweep (other sweeps may share the database)."""

from __future__ import annotations

from typing import Any, Protocol

import optuna
from optuna.trial import TrialState
from sqlalchemy import func, select

from service.core.db import Database
from service.core.repo.models import Config, CurvePoint, Run


class Http(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...


def assert_exactly_once(http: Http, db: Database, sweep: dict[str, Any], *, epochs: int) -> None:
    """Every configuration has exactly one completed trial; every seed exactly one run with one curve."""
    sid = sweep["id"]
    assert sweep["state"] == "completed", sweep
    runs = http.get(f"/v1/sweeps/{sid}/runs", params={"limit": 1000}).json()
    assert runs["total"] == sweep["n_configs"] * sweep["n_seeds"]
    for run in runs["items"]:
        assert run["status"] in ("completed", "nonfinite"), run
        assert run["run_class"] is not None
        curve = http.get(f"/v1/runs/{run['id']}/curve").json()["points"]
        expected = epochs + 1 if run["status"] == "completed" else len(curve)
        assert [p["epoch"] for p in curve] == list(range(expected)), run
    with db.transaction() as s:
        per_config = s.execute(
            select(Run.config_id, Run.seed, func.count())
            .where(Run.sweep_id == sid)
            .group_by(Run.config_id, Run.seed)
        ).all()
        assert len(per_config) == sweep["n_configs"] * sweep["n_seeds"]
        assert {n for *_, n in per_config} == {1}  # one run per configuration x seed
        states = s.execute(
            select(Config.state, func.count()).where(Config.sweep_id == sid).group_by(Config.state)
        ).all()
        assert dict(states) == {"completed": sweep["n_configs"]}
        run_ids = select(Run.id).where(Run.sweep_id == sid).scalar_subquery()
        dup = s.execute(
            select(CurvePoint.run_id, CurvePoint.epoch, func.count())
            .where(CurvePoint.run_id.in_(run_ids))
            .group_by(CurvePoint.run_id, CurvePoint.epoch)
            .having(func.count() > 1)
        ).all()
        assert dup == []
    study = optuna.load_study(study_name=sweep["study_name"], storage=db.url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == sweep["n_configs"]  # one completed trial per configuration, no more
    assert len({tuple(sorted(t.params.items())) for t in complete}) == sweep["n_configs"]
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)
