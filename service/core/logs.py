"""Logging setup for every process (API, workers, CLI): plain or JSON lines, secrets redacted.

Redaction is a filter on the handler, so it covers third-party loggers
(uvicorn, SQLAlchemy, httpx) too: bearer tokens, our token secrets and
passwords in database URLs never reach a log line, whoever formatted it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

from service.core.tokens import PREFIX

REDACTED = "[REDACTED]"

_PATTERNS = (
    # Authorization: Bearer <secret>, in headers dumped by any library.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    # Our own token secrets (service.core.tokens.PREFIX), wherever they appear.
    (re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{8,}"), REDACTED),
    # user:password@host in URLs (postgresql+psycopg://user:pw@host/db).
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(@)"), r"\1" + REDACTED + r"\2"),
    # password=..., token=..., secret=... in DSNs, query strings and reprs.
    (
        re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api_key)(['\"]?\s*[=:]\s*['\"]?)[^\s'\",;&}]+"),
        r"\1\2" + REDACTED,
    ),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Formats the message once, redacts it, and freezes it into the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else redact(repr(value))
                )
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(level: str = "INFO", *, json_lines: bool = False, stream: Any = None) -> logging.Handler:
    """Replace the root handlers with one redacting handler; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    return handler
