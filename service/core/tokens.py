"""API tokens: only a SHA-256 of the secret is stored; the secret is shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.repo.models import ApiToken
from service.core.timeutil import aware, utcnow

PREFIX = "sws_"


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, name: str) -> tuple[TokenRecord, str]:
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_hash(secret), created_at=utcnow())
    session.add(row)
    session.flush()
    return TokenRecord(row.id, row.name, aware(row.created_at), None), secret  # type: ignore[arg-type]


def revoke_token(session: Session, *, token_id: int) -> TokenRecord:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist; list tokens with `sweeps token list`")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return TokenRecord(row.id, row.name, aware(row.created_at), aware(row.revoked_at))  # type: ignore[arg-type]


def list_tokens(session: Session) -> list[TokenRecord]:
    return [
        TokenRecord(r.id, r.name, aware(r.created_at), aware(r.revoked_at))  # type: ignore[arg-type]
        for r in session.scalars(select(ApiToken).order_by(ApiToken.id))
    ]


def verify(session: Session, *, secret: str) -> int | None:
    """The token's id when the secret is valid and not revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(secret)))
    if row is None or row.revoked_at is not None:
        return None
    return row.id
