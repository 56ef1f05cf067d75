"""What each configuration of a sweep trained with: its params over the workload's defaults.

The defaults are a preset's ``default_params`` (the reporting user's setup) or
an uploaded workload's compiled optimizer with all its settings
(``WorkloadRecord.compile``); an entry point has none (Keras' defaults).
The API's configurations, the CSV export and the configuration page show the
result of ``compile_settings.trained_with``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from service.core.compile_settings import trained_with
from service.core.repo import workloads as workloads_repo
from service.core.workloads import PRESETS


def workload_defaults(session: Session, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings a sweep's workload fixes (see the module docstring), with its loss."""
    block = spec.get("workload") or {}
    preset = PRESETS.get(str(block.get("preset"))) if "preset" in block else None
    if preset is not None:
        return {**preset.default_params, "loss": preset.loss}
    if "id" in block:
        record = workloads_repo.find_workload(session, workload_id=int(block["id"]))
        if record is not None:
            compiled = record.compile or {}
            return {**(compiled.get("params") or {}), "loss": record.loss}
    return {}


def configuration_settings(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """One configuration's training settings: optimizer and all its settings, batch size, loss."""
    base = {k: v for k, v in defaults.items() if k != "loss"}
    out = trained_with(base, params)
    if "loss" in defaults:
        out["loss"] = defaults["loss"]
    return out


def settings_text(settings: Mapping[str, Any]) -> str:
    """``key=value`` pairs joined by ``;`` (a CSV cell; ``clipnorm=None`` left out)."""
    return ";".join(f"{k}={v}" for k, v in settings.items() if v is not None)
