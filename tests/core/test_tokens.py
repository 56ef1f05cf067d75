"""API tokens: the secret is shown once, only its hash is stored, a revoked token stops working."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.core import tokens
from service.core.db import Database
from service.core.errors import NotFound
from service.core.repo import tokens as tokens_repo
from service.core.repo.models import ApiToken


def test_create_verify_revoke(db: Database) -> None:
    with db.transaction() as s:
        record, secret = tokens.create_token(s, name="ci")
    assert secret.startswith(tokens.PREFIX) and record.name == "ci" and record.revoked_at is None
    with db.transaction() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
        assert secret not in stored and len(stored) == 1  # the secret itself is never stored
        assert tokens.verify(s, secret=secret) == record.id
        assert tokens.verify(s, secret=secret + "x") is None
    with db.transaction() as s:
        revoked = tokens_repo.revoke_token(s, token_id=record.id)
    assert revoked.revoked_at is not None and revoked.created_at.tzinfo is not None
    with db.transaction() as s:
        assert tokens.verify(s, secret=secret) is None
        again = tokens_repo.revoke_token(s, token_id=record.id)  # revoking twice keeps the first time
        assert again.revoked_at == revoked.revoked_at
        assert [t.id for t in tokens_repo.list_tokens(s)] == [record.id]


def test_revoking_an_unknown_token_says_how_to_list_them(db: Database) -> None:
    with db.transaction() as s, pytest.raises(NotFound, match="sweeps token list"):
        tokens_repo.revoke_token(s, token_id=12345)
