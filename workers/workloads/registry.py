"""Resolve a sweep's workload block to a ``Workload``: presets and entry points.

Entry-point workloads let a team ship its own model and data as an installed
package on the workers::

    [project.entry-points."stability_sweeps.workloads"]
    my_model = "my_pkg.sweeps:make_workload"   # a callable: params -> Workload

The callable receives the sweep's ``workload.params`` dict and returns an
object meeting ``workers.workloads.base.Workload``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from service.core.errors import InvalidSpec, NotFound
from service.core.workloads import PRESETS
from workers.workloads.base import Workload

ENTRY_POINT_GROUP = "stability_sweeps.workloads"
_REQUIRED = ("name", "loss", "num_classes", "default_params", "dataset", "build_model")


def build_preset(name: str, params: Mapping[str, Any]) -> Workload:
    """The preset's workload with ``params`` merged over its defaults (validated)."""
    from workers.workloads.presets import PRESET_CLASSES  # imports Keras: only when building

    if name not in PRESET_CLASSES:
        raise NotFound(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
    workload: Workload = PRESET_CLASSES[name](params)
    return workload


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_entry_points() -> list[str]:
    """Names of the workloads installed under the ``stability_sweeps.workloads`` group."""
    return sorted(_entry_points())


def build_entry_point(name: str, params: Mapping[str, Any]) -> Workload:
    eps = _entry_points()
    if name not in eps:
        have = ", ".join(sorted(eps)) or "none installed"
        raise NotFound(
            f"no workload entry point {name!r} in group {ENTRY_POINT_GROUP!r} ({have}); "
            "install the package that provides it on the worker"
        )
    factory = eps[name].load()
    if not callable(factory):
        raise InvalidSpec(
            f"entry point {name!r} ({eps[name].value}) is not callable; it must be params -> Workload"
        )
    workload = factory(dict(params))
    missing = [attr for attr in _REQUIRED if not hasattr(workload, attr)]
    if missing:
        raise InvalidSpec(
            f"entry point {name!r} returned {type(workload).__name__}, which lacks {', '.join(missing)} "
            "(see workers.workloads.base.Workload)"
        )
    result: Workload = workload
    return result
