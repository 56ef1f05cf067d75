"""The one place that writes Optuna's tables directly.

Why not Optuna's storage API everywhere: ``enqueue_trial`` is one transaction
per trial (a 10,000-point grid would take minutes), claiming needs a
compare-and-swap that also updates our own rows in the same transaction, and
finishing a trial must be atomic with the guard that its worker still owns it
(a late result from a worker presumed dead must not land). Everything written
here is exactly what Optuna itself writes, so optuna-dashboard and
``optuna.load_study`` read the studies unchanged; studies themselves are
created and deleted through Optuna's public API.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models as om
from optuna.trial import TrialState
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.core.spec_space import LOG_DIMENSIONS


def grid_distributions(values: Mapping[str, Sequence[Any]]) -> dict[str, BaseDistribution]:
    """Optuna distributions for the swept dimensions of a grid.

    Numbers become Float/Int ranges (log for learning rate and epsilon) so
    Optuna's plots draw real axes; strings and booleans are categorical.
    """
    out: dict[str, BaseDistribution] = {}
    for name, vals in values.items():
        if all(isinstance(v, bool) or isinstance(v, str) for v in vals):
            out[name] = CategoricalDistribution(list(vals))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            lo, hi = min(vals), max(vals)
            out[name] = IntDistribution(lo, hi, log=lo > 0 and name == "batch_size")
        else:
            lo_f, hi_f = float(min(vals)), float(max(vals))
            out[name] = FloatDistribution(lo_f, hi_f, log=name in LOG_DIMENSIONS and lo_f > 0)
    return out


def _internal(dist: BaseDistribution, value: Any) -> float:
    return float(dist.to_internal_repr(value))


def next_trial_number(session: Session, study_id: int) -> int:
    n = session.scalar(select(func.max(om.TrialModel.number)).where(om.TrialModel.study_id == study_id))
    return 0 if n is None else int(n) + 1


def enqueue_trials(
    session: Session,
    study_id: int,
    params_list: Sequence[Mapping[str, Any]],
    distributions: Mapping[str, BaseDistribution],
    now: datetime,
) -> list[int]:
    """Bulk-insert WAITING trials with their params; returns trial ids in order."""
    if not params_list:
        return []
    first = next_trial_number(session, study_id)
    session.execute(
        insert(om.TrialModel),
        [
            {"number": first + i, "study_id": study_id, "state": TrialState.WAITING, "datetime_start": None}
            for i in range(len(params_list))
        ],
    )
    rows = session.execute(
        select(om.TrialModel.trial_id, om.TrialModel.number)
        .where(om.TrialModel.study_id == study_id, om.TrialModel.number >= first)
        .order_by(om.TrialModel.number)
    ).all()
    trial_ids = [r.trial_id for r in rows][: len(params_list)]
    dist_json = {k: distribution_to_json(d) for k, d in distributions.items()}
    param_rows = [
        {
            "trial_id": tid,
            "param_name": name,
            "param_value": _internal(distributions[name], value),
            "distribution_json": dist_json[name],
        }
        for tid, params in zip(trial_ids, params_list, strict=True)
        for name, value in params.items()
        if name in distributions
    ]
    if param_rows:
        session.execute(insert(om.TrialParamModel), param_rows)
    return trial_ids


def copy_trial_as_waiting(session: Session, study_id: int, trial_id: int, now: datetime) -> int:
    """A new WAITING trial with the same params (retry of a failed attempt)."""
    number = next_trial_number(session, study_id)
    session.execute(insert(om.TrialModel).values(number=number, study_id=study_id, state=TrialState.WAITING))
    new_id = session.scalar(
        select(om.TrialModel.trial_id).where(
            om.TrialModel.study_id == study_id, om.TrialModel.number == number
        )
    )
    assert new_id is not None
    params = (
        session.execute(select(om.TrialParamModel).where(om.TrialParamModel.trial_id == trial_id))
        .scalars()
        .all()
    )
    if params:
        session.execute(
            insert(om.TrialParamModel),
            [
                {
                    "trial_id": new_id,
                    "param_name": p.param_name,
                    "param_value": p.param_value,
                    "distribution_json": p.distribution_json,
                }
                for p in params
            ],
        )
    return int(new_id)


def cas_state(
    session: Session,
    trial_id: int,
    *,
    expect: TrialState,
    new: TrialState,
    now: datetime,
) -> bool:
    """Compare-and-swap a trial's state; True when this caller made the change.

    A single conditional UPDATE is atomic on SQLite and PostgreSQL alike: of
    two workers racing for the same WAITING trial exactly one sees rowcount 1.
    """
    values: dict[str, Any] = {"state": new}
    if new == TrialState.RUNNING:
        values["datetime_start"] = now
    if new.is_finished():
        values["datetime_complete"] = now
    result = session.execute(
        update(om.TrialModel)
        .where(om.TrialModel.trial_id == trial_id, om.TrialModel.state == expect)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


_VT = om.TrialValueModel.TrialValueType
_IVT = om.TrialIntermediateValueModel.TrialIntermediateValueType


def _value_type(v: float) -> tuple[float | None, str]:
    """Optuna stores infinities as NULL plus a type tag; the tag's name is shared."""
    if math.isnan(v):
        return None, "NAN"
    if v == math.inf:
        return None, "INF_POS"
    if v == -math.inf:
        return None, "INF_NEG"
    return v, "FINITE"


def write_results(
    session: Session,
    trial_id: int,
    *,
    value: float | None,
    intermediate: Sequence[tuple[int, float]],
) -> None:
    """Objective value and intermediate values of a finishing trial (bulk)."""
    session.execute(
        delete(om.TrialIntermediateValueModel).where(om.TrialIntermediateValueModel.trial_id == trial_id)
    )
    rows = []
    for step, v in intermediate:
        val, typ = _value_type(v)
        rows.append(
            {
                "trial_id": trial_id,
                "step": step,
                "intermediate_value": val,
                "intermediate_value_type": getattr(_IVT, typ),
            }
        )
    if rows:
        session.execute(insert(om.TrialIntermediateValueModel), rows)
    if value is not None:
        val, typ = _value_type(value)
        if typ == "NAN":
            raise ValueError("NaN is not a storable trial value")
        session.execute(
            insert(om.TrialValueModel).values(
                trial_id=trial_id, objective=0, value=val, value_type=getattr(_VT, typ)
            )
        )


def trial_numbers(session: Session, trial_ids: Sequence[int]) -> dict[int, int]:
    if not trial_ids:
        return {}
    rows = session.execute(
        select(om.TrialModel.trial_id, om.TrialModel.number).where(om.TrialModel.trial_id.in_(trial_ids))
    ).all()
    return {r.trial_id: r.number for r in rows}


def fail_waiting(session: Session, study_id: int, now: datetime) -> int:
    """Cancelled sweep: its WAITING trials become FAIL (Optuna has no CANCELLED)."""
    result = session.execute(
        update(om.TrialModel)
        .where(om.TrialModel.study_id == study_id, om.TrialModel.state == TrialState.WAITING)
        .values(state=TrialState.FAIL, datetime_complete=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
