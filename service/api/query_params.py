"""Query parameters shared by several routes: parameter filters, paging, run classes."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

from fastapi import Query, Request
from pydantic import StringConstraints

from service.core.analysis.regions import REGION_METRICS
from service.core.errors import InvalidSpec
from service.core.repo.runs import ParamFilter
from service.core.spec_space import DIMENSIONS

_PARAM_HELP = (
    "Filter on a parameter, repeatable: `name=value` (e.g. `batch_size=32`, `optimizer=adam`) "
    "or `name=low..high` for an inclusive range (e.g. `learning_rate=1e-4..1e-2`; either end may be empty)."
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def parse_param_filters(raw: list[str] | None) -> list[ParamFilter]:
    out: list[ParamFilter] = []
    for item in raw or []:
        name, sep, value = item.partition("=")
        if not sep or not _NAME.match(name) or not value:
            raise InvalidSpec(f"param: {item!r} is not `name=value` or `name=low..high`")
        if ".." in value:
            lo, _, hi = value.partition("..")
            try:
                out.append(ParamFilter(name, low=float(lo) if lo else None, high=float(hi) if hi else None))
            except ValueError as exc:
                raise InvalidSpec(f"param: the range in {item!r} must be numbers, like 1e-4..1e-2") from exc
        else:
            parsed: object = value
            if value in ("true", "false"):
                parsed = value == "true"
            else:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
            out.append(ParamFilter(name, equals=parsed))
    return out


REGION_METRIC_HELP = (
    "What colours the map (each cell's `value`): "
    + ", ".join(f"`{m}`" for m in REGION_METRICS)
    + ". Fluctuation metrics are the median over the cell's seeds (docs/architecture.md, Fluctuation)."
)
# A map's axes: two different dimensions that the sweep swept. Which ones it swept depends on the
# sweep, so a dimension it did not sweep (or x = y) is a 422 that lists the sweep's dimensions.
_AXIS_HELP = "A dimension of the sweep's space; the sweep must have swept it, and x and y must differ."
RegionAxis = Annotated[
    str, Query(max_length=64, description=_AXIS_HELP, json_schema_extra={"enum": list(DIMENSIONS)})
]
RegionMetric = Annotated[
    str,
    Query(max_length=32, description=REGION_METRIC_HELP, json_schema_extra={"enum": list(REGION_METRICS)}),
]


def region_slice(request: Request, *, x: str, y: str, reserved: Collection[str]) -> dict[str, str]:
    """The dimensions a region map is sliced at: every query parameter but the reserved ones."""
    for axis, name in (("x", x), ("y", y)):
        if name not in DIMENSIONS:  # as the document's enum says, whether or not the sweep has results yet
            raise InvalidSpec(f"{axis}: {name!r} is not a dimension; choose one of {', '.join(DIMENSIONS)}")
    if x == y:
        raise InvalidSpec("x and y must be two different dimensions")
    return {k: v for k, v in request.query_params.items() if k not in reserved}


# The forms parse_param_filters reads, for the OpenAPI document and a 422 before parsing.
# No trailing dot on a number: "1...2" must split as 1 .. .2, the way the parser splits it.
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FILTER = (
    rf"^[a-z_][a-z0-9_]{{0,63}}=(?:{_NUMBER})?\.\.(?:{_NUMBER})?$"
    r"|^[a-z_][a-z0-9_]{0,63}=\.?[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*$"
)
ParamFilterText = Annotated[str, StringConstraints(pattern=_FILTER, max_length=200)]
ParamQuery = Annotated[list[ParamFilterText] | None, Query(description=_PARAM_HELP, max_length=20)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
RunClass = Literal["diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged"]
