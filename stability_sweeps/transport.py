"""HTTP to the public API (the OpenAPI document is the contract): every failure becomes one
exception from ``stability_sweeps.errors`` with one line of message, never a chain of httpx's."""

from __future__ import annotations

from typing import Any

import httpx

from stability_sweeps.errors import ApiError, ServerUnreachable

START_HINT = (
    "start one with `sweeps serve` (or call stability_sweeps.sweep(...) without a server to run one "
    "in the background), or point SWEEPS_SERVER at a running one"
)


def api_error(resp: httpx.Response) -> ApiError:
    """The API's ``{"error": code, "detail": message}`` as an ApiError; any other body as its text."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        code = body.get("error") if isinstance(body.get("error"), str) else "http_error"
        errors = body.get("errors") if isinstance(body.get("errors"), list) else None
        return ApiError(resp.status_code, str(code), body["detail"], errors=errors)
    text = resp.text.strip()[:500] or resp.reason_phrase
    return ApiError(resp.status_code, "http_error", text)


class Transport:
    """One connection pool to one server, with the token sent on every request."""

    def __init__(self, url: str, token: str | None, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self._timeout_s = timeout_s

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerUnreachable(
                f"the API at {self.url} did not answer {method} {path} within {self._timeout_s:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the Stability Sweeps API at {self.url} ({type(exc).__name__}: {exc}); "
                + START_HINT
            ) from None
        if resp.status_code >= 400:
            raise api_error(resp) from None
        return resp

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        return resp.json() if resp.content else None

    def pages(self, path: str, params: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
        """Every item of a paginated list (``{"items", "total", "limit", "offset"}``)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.json("GET", path, params={**params, "limit": limit, "offset": len(items)})
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items

    def close(self) -> None:
        self._http.close()
