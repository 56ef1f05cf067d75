"""Failures reach the caller as one exception with one line: the API's code and message, or the
URL tried and how to start a server; never a chain of httpx exceptions."""

from __future__ import annotations

import numpy as np
import pytest

from stability_sweeps import ApiError, Client, ServerUnreachable
from tests.conftest import small_spec
from tests.helpers import free_port


def test_no_server_is_one_line_naming_the_url_and_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Client(url) as c, pytest.raises(ServerUnreachable) as caught:
        c.get_sweep(1)
    message = str(caught.value)
    assert "\n" not in message and url in message and "sweeps serve" in message and "SWEEPS_SERVER" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_server_and_token_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, live_api: str, token: str
) -> None:
    monkeypatch.setenv("SWEEPS_SERVER", live_api + "/")
    monkeypatch.delenv("SWEEPS_TOKEN", raising=False)
    with Client() as anonymous, pytest.raises(ApiError) as caught:
        anonymous.submit(small_spec())
    assert anonymous.url == live_api and caught.value.status == 401 and caught.value.code == "unauthorized"
    monkeypatch.setenv("SWEEPS_TOKEN", token)
    with Client() as c:
        assert c.submit(small_spec()).state == "queued"


def test_a_422_carries_the_apis_code_message_and_fields(api: Client) -> None:
    with pytest.raises(ApiError) as caught:
        api.submit(small_spec(space={"learnig_rate": [0.1]}))
    err = caught.value
    assert (err.status, err.code) == (422, "invalid_request"), err
    assert "learnig_rate" in err.message and str(err).startswith("422 invalid_request: ")
    assert [e["field"] for e in err.errors] == ["space.learnig_rate"]
    assert err.__cause__ is None and err.__suppress_context__

    with pytest.raises(ApiError) as caught:
        api.upload_dataset(np.zeros((4, 2)), np.array([np.nan, 1, 0, 1]))
    assert (caught.value.status, caught.value.code) == (422, "invalid_upload") and caught.value.errors == []
    assert "y_train" in caught.value.message, caught.value.message


def test_a_404_names_what_is_missing(api: Client) -> None:
    with pytest.raises(ApiError) as caught:
        api.get_sweep(999)
    assert caught.value.status == 404 and caught.value.code == "not_found" and "999" in caught.value.message
