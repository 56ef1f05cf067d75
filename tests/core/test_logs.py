"""service/core/logs.py: secrets never reach a log line, plain or JSON lines, whoever logged them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database
from service.core.logs import REDACTED, RedactingFilter, redact, setup_logging
from tests.conftest import small_spec


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging("DEBUG", json_lines=True, stream=stream)
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved_handlers:
        root.addHandler(h)
    root.setLevel(saved_level)


def test_no_token_or_password_reaches_the_logs(
    captured_logs: io.StringIO, db: Database, settings: Settings, token: str
) -> None:

    log = logging.getLogger("tests.secrets")
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as c:
        good, bad = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {token}x"}
        assert c.post("/v1/sweeps", json=small_spec(), headers=good).status_code == 201
        assert c.post("/v1/sweeps", json=small_spec(), headers=bad).status_code == 401
    # Library code that logs a header dict, a DSN, or the secret itself.
    log.warning("request headers %s", {"authorization": f"Bearer {token}"})
    log.error("cannot connect to %s", "postgresql+psycopg://app:hunter2@db:5432/sweeps")
    log.info("token=%s password=%s", token, "hunter2")
    try:
        raise RuntimeError(f"failed with {token}")
    except RuntimeError:
        log.exception("boom")
    text = captured_logs.getvalue()
    assert token not in text and token[4:] not in text and "hunter2" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(REDACTED in line["message"] for line in lines)
    boom = next(line for line in lines if line["message"] == "boom")
    assert "RuntimeError" in boom["exception"] and REDACTED in boom["exception"]
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def test_redact_keeps_ordinary_text() -> None:
    assert redact("sweep 3 created: 6 configurations") == "sweep 3 created: 6 configurations"
    assert redact("sqlite:///./sweeps.db") == "sqlite:///./sweeps.db"
    assert (
        redact("postgresql+psycopg://postgres@127.0.0.1:5432/x")
        == "postgresql+psycopg://postgres@127.0.0.1:5432/x"
    )


def test_redact_hides_each_kind_of_secret() -> None:
    assert redact("Authorization: Bearer abc.DEF-123") == f"Authorization: Bearer {REDACTED}"
    assert (
        redact("postgresql+psycopg://app:hunter2@db:5432/x")
        == f"postgresql+psycopg://app:{REDACTED}@db:5432/x"
    )
    assert redact("host=db password='hunter2' user=app") == f"host=db password='{REDACTED}' user=app"
    assert redact("?token=abc&x=1") == f"?token={REDACTED}&x=1"


def test_plain_lines_and_extras_in_json_lines() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        plain = io.StringIO()
        setup_logging("info", stream=plain)
        assert root.level == logging.INFO and len(root.handlers) == 1
        logging.getLogger("tests.plain").debug("not shown")
        logging.getLogger("tests.plain").info("password=%s", "hunter2")
        assert plain.getvalue().rstrip().endswith(f"INFO tests.plain password={REDACTED}")
        assert "not shown" not in plain.getvalue()
        lines = io.StringIO()
        setup_logging("DEBUG", json_lines=True, stream=lines)
        logging.getLogger("tests.json").info("claimed", extra={"sweep_id": 3, "dsn": {"password": "hunter2"}})
        (line,) = [json.loads(x) for x in lines.getvalue().splitlines()]
        assert line["sweep_id"] == 3 and "hunter2" not in line["dsn"] and line["level"] == "INFO"
        assert line["logger"] == "tests.json" and line["message"] == "claimed"
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved_handlers:
            root.addHandler(h)
        root.setLevel(saved_level)


def test_a_bad_format_string_does_not_lose_the_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s %s", ("secret-value",), None)
    assert RedactingFilter().filter(record)
    assert record.args is None and "secret-value" not in record.getMessage()
