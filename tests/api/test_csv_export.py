"""service/api/csv_export.py: the streamed per-run CSV, sent in chunks of rows (what the rows say is
tested in tests/core/results/test_results_export.py)."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from fastapi.testclient import TestClient

from service.api import csv_export
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import NotFound
from service.core.work.claims import claim
from tests.helpers import finish_claim, new_sweep


def _chunks(db: Database, sweep_id: int) -> list[str]:
    response = csv_export.csv_response(db, sweep_id)
    assert response.media_type == "text/csv"
    assert response.headers["content-disposition"] == f'attachment; filename="sweep-{sweep_id}.csv"'

    async def read() -> list[str]:
        return [c if isinstance(c, str) else bytes(c).decode() async for c in response.body_iterator]

    return asyncio.run(read())


def _finished_sweep(db: Database, settings: Settings) -> int:
    sid = new_sweep(db, settings, space={"learning_rate": [1e-3, 1e-2], "batch_size": [4]}, seeds=2)
    for c in claim(db, "w", max_replicas=4):
        assert finish_claim(db, c, worker_id="w", final_loss=0.25)
    return sid


def test_rows_are_sent_in_chunks_that_add_up_to_the_whole_file(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _finished_sweep(db, settings)
    (whole,) = _chunks(db, sid)  # 5 rows (header and 4 runs): one chunk under the default size
    rows = list(csv.reader(io.StringIO(whole)))
    assert len(rows) == 5 and rows[0][:2] == ["run_id", "config_id"]
    monkeypatch.setattr(csv_export, "_CSV_CHUNK_ROWS", 2)
    chunks = _chunks(db, sid)
    assert [len(list(csv.reader(io.StringIO(c)))) for c in chunks] == [2, 2, 1]
    assert "".join(chunks) == whole


def test_an_unknown_sweep_is_not_found_before_anything_is_sent(db: Database) -> None:
    with pytest.raises(NotFound):
        csv_export.csv_response(db, 12345)


def test_the_api_and_the_pages_link_serve_the_same_file(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sid = _finished_sweep(db, settings)
    api = client.get(f"/v1/sweeps/{sid}/export.csv")
    page = client.get(f"/sweeps/{sid}/export.csv")
    assert api.status_code == page.status_code == 200
    assert api.text == page.text == "".join(_chunks(db, sid))
    assert client.get(f"/v1/sweeps/{sid + 1}/export.csv").status_code == 404
