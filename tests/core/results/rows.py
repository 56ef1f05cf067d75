"""Hand-made analysis rows and sweep records for the tests of service.core.results (no database)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from service.core.records import Progress, SweepRecord
from service.core.repo.analysis_rows import AnalysisRow
from service.core.states import RunStatus, SweepState

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def sweep_record(
    spec: dict[str, Any] | None = None, *, runs_done: int = 0, refine_round: int = 0
) -> SweepRecord:
    return SweepRecord(
        id=7,
        name="hand-made",
        study_name="study",
        study_id=1,
        state=SweepState.RUNNING,
        workload_key="k",
        sampler="grid",
        n_configs=0,
        n_seeds=0,
        epochs=5,
        spec=spec or {},
        created_at=T0,
        updated_at=T0,
        finished_at=None,
        refine_round=refine_round,
        progress=Progress(),
        runs_done=runs_done,
    )


def row(
    run_id: int,
    config_id: int,
    params: dict[str, Any],
    run_class: str | None,
    *,
    seed: int = 0,
    status: str = RunStatus.COMPLETED,
    final_loss: float | None = 0.1,
    l0: float | None = None,
    l_chance: float | None = None,
    fluctuation: dict[str, float | None] | None = None,
) -> AnalysisRow:
    return AnalysisRow(
        run_id=run_id,
        config_id=config_id,
        params=params,
        seed=seed,
        init_seed=seed // 2,
        data_seed=seed % 2,
        status=status,
        run_class=run_class,
        final_loss=final_loss,
        final_accuracy=None if final_loss is None else 0.5,
        l0=l0,
        l_chance=l_chance,
        epochs_to_target=None,
        fluctuation=dict(fluctuation or {}),
    )
