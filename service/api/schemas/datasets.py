"""An uploaded dataset (without its bytes)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from service.core.repo.datasets import DatasetRecord


class DatasetOut(BaseModel):
    id: int
    name: str
    sha256: str
    size_bytes: int
    summary: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, r: DatasetRecord) -> DatasetOut:
        return cls(**asdict(r))
