"""Dependencies shared by routes: settings, database, and access control."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API token from `sweeps token create NAME`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token_id(db: Database, creds: HTTPAuthorizationCredentials | None) -> int | None:
    if creds is None:
        return None
    with db.transaction() as s:
        token_id = tokens.verify(s, secret=creds.credentials)
    if token_id is None:
        raise Unauthorized("the API token is unknown or revoked; create one with `sweeps token create NAME`")
    return token_id


def writer(db: DbDep, settings: SettingsDep, creds: Credentials) -> int | None:
    """Every write needs a valid token (unless the server was started with writes open)."""
    token_id = _token_id(db, creds)
    if token_id is None and settings.require_token_for_writes:
        raise Unauthorized(
            "this request changes data and needs an API token: send `Authorization: Bearer <token>`; "
            "create one with `sweeps token create NAME`"
        )
    return token_id


def reader(db: DbDep, settings: SettingsDep, creds: Credentials) -> int | None:
    token_id = _token_id(db, creds)
    if token_id is None and settings.read_access == "token":
        raise Unauthorized(
            "this server requires an API token for reads: send `Authorization: Bearer <token>`"
        )
    return token_id


WriterDep = Annotated[int | None, Depends(writer)]
ReaderDep = Annotated[int | None, Depends(reader)]
