"""What the sweep's read methods return: plain lists of dict records (``to_pandas()`` when pandas is
installed) and the report, which renders as Markdown in Jupyter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Records(list[dict[str, Any]]):
    """A list of JSON records as the API sent them; ``meta`` keeps the rest of the answer
    (a region's axes and edges, the edge report's scaling fits)."""

    def __init__(self, items: Iterable[dict[str, Any]] = (), meta: dict[str, Any] | None = None) -> None:
        super().__init__(items)
        self.meta: dict[str, Any] = meta or {}

    def to_pandas(self) -> Any:
        """One row per record; nested objects become dotted columns (``params.learning_rate``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_pandas() needs pandas: pip install pandas (the records are plain dicts without it)"
            ) from None
        return pd.json_normalize(list(self))


@dataclass(frozen=True)
class Report:
    """The sweep's diagnosis: ``markdown`` as ``GET /v1/sweeps/{id}/report`` writes it, ``data`` the JSON."""

    sweep_id: int
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        return str(self.data.get("headline", ""))

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __str__(self) -> str:
        return self.markdown
