"""What the results views read: every run of a sweep in a few lean queries, without curves.

The analysis of a 10,000-run sweep must answer cold in well under a second,
so these reads fetch columns, not ORM rows, and leave JSON undecoded until a
reader asks for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service.core.analysis.seeds import SEED_FLUCTUATION_KEYS
from service.core.analysis.sharpness import SHARPNESS_KEYS
from service.core.repo.models import Config, Run

_NOT_MEASURED: Mapping[str, float] = MappingProxyType({})  # the default: nothing measured

# The run metrics that are also columns of ``runs`` (models.Run; migration 0007).
ANALYSIS_METRICS: tuple[str, ...] = (
    "l0",
    "l_chance",
    "epochs_to_target",
    *SEED_FLUCTUATION_KEYS,
    *SHARPNESS_KEYS,
)


class AnalysisRow(NamedTuple):
    """One run as analysis reads it: the few metrics it aggregates are columns, nothing else.

    Decoding every run's metrics and flags JSON (and its configuration's
    params once per run through a join) was three quarters of a cold request
    on a 10,000-run sweep; the export, the only reader of the whole metrics
    and flags, reads them apart (``run_details``).

    An immutable record like the repositories' frozen dataclasses, but a named
    tuple: a cold request builds 10,000 of them, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) cost ~30 ms of its
    300 ms budget where a tuple costs ~5.
    """

    run_id: int
    config_id: int
    params: dict[str, Any]  # shared by the runs of one configuration: do not mutate
    seed: int
    init_seed: int
    data_seed: int
    status: str
    run_class: str | None
    final_loss: float | None
    final_accuracy: float | None
    l0: float | None
    l_chance: float | None
    epochs_to_target: int | None
    # The fluctuation measures aggregated over seeds (SEED_FLUCTUATION_KEYS) that the run
    # measured, by name (absent: not measured). Read-only: the run's summary shares it.
    fluctuation: Mapping[str, float] = _NOT_MEASURED
    # How close to its stability threshold the run trained (SHARPNESS_KEYS), when measured.
    sharpness: Mapping[str, float] = _NOT_MEASURED


_SHARP = 12 + len(SEED_FLUCTUATION_KEYS)  # where the sharpness metrics start in a row


def analysis_columns(metrics: Mapping[str, Any] | None) -> dict[str, float | int | None]:
    """The ``runs`` columns that copy a run's ANALYSIS_METRICS, from its metrics (NULL: not measured).

    Written beside ``metrics`` (``runs.store_outcome``), so the two never disagree.
    """
    given = metrics or {}
    out: dict[str, float | int | None] = {}
    for name in ANALYSIS_METRICS:
        v = given.get(name)
        if not isinstance(v, int | float) or not math.isfinite(v):
            out[name] = None
        else:
            out[name] = int(v) if name == "epochs_to_target" else float(v)
    return out


def analysis_rows(session: Session, *, sweep_id: int) -> list[AnalysisRow]:
    """Every run of a sweep with what analysis needs, in two lean queries (configs, then runs).

    The metrics analysis aggregates are columns of their own (``analysis_columns``;
    13 ``json_extract`` calls per run were ~20 ms of a cold 10,000-run analysis);
    the whole metrics and flags stay in the database. Executed on the connection,
    not through the ORM session: plain rows, without the ORM's per-row
    bookkeeping (~7 ms of 10,000 rows).
    """
    conn = session.connection()
    params = {
        int(cid): p
        for cid, p in conn.execute(select(Config.id, Config.params).where(Config.sweep_id == sweep_id))
    }
    rows: Sequence[Any] = conn.execute(  # plain tuples: positional reads below
        select(
            Run.id,
            Run.config_id,
            Run.seed,
            Run.init_seed,
            Run.data_seed,
            Run.status,
            Run.run_class,
            Run.final_loss,
            Run.final_accuracy,
            *(getattr(Run, k) for k in ANALYSIS_METRICS),  # l0, l_chance, epochs_to_target, then _SHARP
        )
        .where(Run.sweep_id == sweep_id)
        .order_by(Run.config_id, Run.seed)
    ).all()
    keys = SEED_FLUCTUATION_KEYS
    # Positional, one tuple each: keyword arguments alone cost ~15 ms over 10,000 rows.
    return [
        AnalysisRow(
            r[0],
            r[1],
            params[r[1]],
            r[2],
            int(r[3]),
            int(r[4]),
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            None if r[11] is None else int(r[11]),
            {k: v for k, v in zip(keys, r[12:_SHARP], strict=True) if v is not None},
            _measured_sharpness(r[_SHARP:]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class RunDetails:
    """A run's metrics and flags as stored text, decoded only when read (the export streams them)."""

    metrics_text: Any  # JSON text (or, from a driver that decodes JSON itself, the value)
    flags_text: Any

    @property
    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = _decoded(self.metrics_text, {})
        return out

    @property
    def flags(self) -> list[str]:
        out: list[str] = _decoded(self.flags_text, [])
        return out


def _decoded(raw: Any, empty: Any) -> Any:
    if raw is None:
        return empty
    return json.loads(raw) if isinstance(raw, str) else raw


def run_details(session: Session, *, sweep_id: int) -> dict[int, RunDetails]:
    """run id -> its metrics and flags, undecoded."""
    rows = session.execute(
        select(Run.id, cast(Run.metrics, Text), cast(Run.flags, Text)).where(Run.sweep_id == sweep_id)
    ).all()
    return {int(r[0]): RunDetails(r[1], r[2]) for r in rows}


def refined_configs(session: Session, *, sweep_id: int) -> dict[int, int]:
    """Configurations added by edge refinement, with their round (the grid's, round 0, are left out)."""
    rows = session.execute(
        select(Config.id, Config.refine_round).where(Config.sweep_id == sweep_id, Config.refine_round > 0)
    ).all()
    return {int(cid): int(rnd) for cid, rnd in rows}


def _measured_sharpness(values: tuple[float | None, ...]) -> Mapping[str, float]:
    """The run's sharpness metrics that were measured; most sweeps measure none (shared empty)."""
    if all(v is None for v in values):
        return _NOT_MEASURED
    return {k: float(v) for k, v in zip(SHARPNESS_KEYS, values, strict=True) if v is not None}
