"""The CSV export of a sweep, one row per run (served by the API and by the dashboard's link)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from service.core.db import Database
from service.core.repo import analysis_rows as rows_repo
from service.core.results.export import export_rows
from service.core.results.loading import load
from service.core.results.training_settings import workload_defaults

_CSV_CHUNK_ROWS = 1000


def csv_response(db: Database, sweep_id: int) -> StreamingResponse:
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
        details = rows_repo.run_details(s, sweep_id=sweep_id)
        defaults = workload_defaults(s, data.sweep.spec)

    def lines() -> Iterator[str]:
        # Chunks of rows, not one chunk per row: every chunk is an ASGI send,
        # and 10,000 of them cost seconds.
        buf = io.StringIO()
        writer = csv.writer(buf)
        for i, row in enumerate(export_rows(data, details, defaults), start=1):
            writer.writerow(row)
            if i % _CSV_CHUNK_ROWS == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="sweep-{sweep_id}.csv"'},
    )
