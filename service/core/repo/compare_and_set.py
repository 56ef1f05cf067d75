"""Guarded UPDATEs: a statement whose WHERE clause is the expected state of one row."""

from __future__ import annotations

from sqlalchemy import CursorResult, Update
from sqlalchemy.orm import Session


def updated_one(session: Session, statement: Update) -> bool:
    """Run a guarded UPDATE of one row; True if it matched, i.e. the caller's compare-and-set won.

    The UPDATE also takes the row's write lock until the transaction ends, so
    what the caller writes next cannot race another writer of that row.
    """
    result = session.execute(statement.execution_options(synchronize_session=False))
    assert isinstance(result, CursorResult)
    return int(result.rowcount) == 1
