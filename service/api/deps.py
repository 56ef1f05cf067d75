"""Dependencies shared by routes: settings, database, caches, and who may read or write.

Access. Writes always need ``Authorization: Bearer <token>`` (unless the
server was started with writes open). Reads need a token only with
``read_access = "token"``. The dashboard's pages cannot send a header, so
they also accept a cookie: open any page once with ``?token=<secret>``; the
server checks it, sets an HttpOnly ``sweeps_token`` cookie (SameSite=Strict)
and redirects to the same address without the secret. Pages and the
dashboard's JSON endpoints then accept the cookie (or the bearer header). The
cookie is only ever accepted for reads: every write still needs the header.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.headlines import HeadlineCache
from service.api.templating import render_error
from service.core import tokens
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import NotFound, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API token from `sweeps token create NAME`")
COOKIE = "sweeps_token"
MAX_ID = 2**63 - 1  # ids are 64-bit integers from 1


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_headlines(request: Request) -> HeadlineCache:
    headlines: HeadlineCache = request.app.state.headlines
    return headlines


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
HeadlinesDep = Annotated[HeadlineCache, Depends(get_headlines)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# ----------------------------------------------------------------- the API: bearer tokens


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


def path_ids_in_range(request: Request) -> None:
    """An id in a path is a 64-bit integer from 1 (as the OpenAPI document says, see
    service/api/openapi.py): any other names nothing that could exist, a 404 (rather than the
    database's complaint about integers it cannot hold)."""
    if not request.url.path.startswith("/v1/"):
        return  # the dashboard's pages answer with their own HTML 404
    for name, value in request.path_params.items():
        if name.endswith("_id") and str(value).isdigit() and not 1 <= int(value) <= MAX_ID:
            raise NotFound(f"nothing at {request.url.path}: {name} must be from 1 to {MAX_ID}")


WriterDep = Annotated[int | None, Depends(writer)]
ReaderDep = Annotated[int | None, Depends(reader)]


# ----------------------------------------------------------------- the dashboard: bearer or cookie


def _page_secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.query_params.get("token") or request.cookies.get(COOKIE) or None


def _valid(db: Database, secret: str | None) -> bool:
    if not secret:
        return False
    with db.transaction() as s:
        return tokens.verify(s, secret=secret) is not None


def page_reader(request: Request, db: DbDep, settings: SettingsDep) -> None:
    """Reads by the dashboard's JSON endpoints: the API's rule, with the page cookie also accepted."""
    if settings.read_access == "token" and not _valid(db, _page_secret(request)):
        raise Unauthorized(
            "this server requires an API token for reads: send `Authorization: Bearer <token>`, "
            "or open a dashboard page once with `?token=<token>`"
        )


PageReader = Annotated[None, Depends(page_reader)]


def page_gate(request: Request, db: Database, settings: Settings) -> Response | None:
    """None when an HTML page may be shown; otherwise the response to send instead (a redirect
    that trades ``?token=`` for the cookie, or an error page)."""
    if settings.read_access != "token":
        return None
    query_secret = request.query_params.get("token")
    if query_secret:
        if not _valid(db, query_secret):
            return render_error(
                request, 401, "That token is unknown or revoked. Create one with `sweeps token create NAME`."
            )
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(
            COOKIE, query_secret, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return resp
    if _valid(db, _page_secret(request)):
        return None
    return render_error(
        request,
        401,
        "This server requires an API token to read sweeps. Open this page once with ?token=<your token> "
        "appended to the address (a cookie then keeps you signed in); create a token with "
        "`sweeps token create NAME`.",
    )
