"""API tokens: a name and the SHA-256 of the secret (the secret itself is never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.repo.models import ApiToken
from service.core.timeutil import aware, utcnow


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(row.id, row.name, aware(row.created_at), aware(row.revoked_at))  # type: ignore[arg-type]


def insert_token(session: Session, *, name: str, token_hash: str) -> TokenRecord:
    row = ApiToken(name=name, token_hash=token_hash, created_at=utcnow())
    session.add(row)
    session.flush()
    return _record(row)


def revoke_token(session: Session, *, token_id: int) -> TokenRecord:
    """Revoking twice keeps the first revocation time."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist; list tokens with `sweeps token list`")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return _record(row)


def list_tokens(session: Session) -> list[TokenRecord]:
    return [_record(r) for r in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def live_token_id(session: Session, *, token_hash: str) -> int | None:
    """The id of the token with this hash, unless there is none or it was revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if row is None or row.revoked_at is not None:
        return None
    return row.id
