"""API tokens: a secret is made and shown once; only its SHA-256 is stored and compared.

Storage (and listing or revoking tokens) is in ``service.core.repo.tokens``.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from service.core.repo import tokens as tokens_repo
from service.core.repo.tokens import TokenRecord

PREFIX = "sws_"  # lets logs (service.core.logs) and secret scanners recognise our secrets


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, name: str) -> tuple[TokenRecord, str]:
    """The new token and its secret (the only time the secret exists outside its holder)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    return tokens_repo.insert_token(session, name=name, token_hash=_hash(secret)), secret


def verify(session: Session, *, secret: str) -> int | None:
    """The token's id when the secret is valid and not revoked."""
    return tokens_repo.live_token_id(session, token_hash=_hash(secret))
