"""POST/GET /v1/datasets over real HTTP on SQLite and PostgreSQL: upload, validation, limits."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core.db import Database
from service.core.repo.models import DatasetBlob
from tests.conftest import make_settings


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def good(n: int = 20) -> bytes:
    rng = np.random.default_rng(0)
    return npz(
        x_train=rng.normal(size=(n, 5)).astype(np.float32),
        y_train=np.arange(n) % 3,
        x_val=rng.normal(size=(6, 5)).astype(np.float32),
        y_val=np.arange(6) % 3,
    )


def upload(client: TestClient, data: bytes, name: str | None = "toy") -> dict:  # type: ignore[type-arg]
    form = {"name": name} if name else {}
    r = client.post("/v1/datasets", files={"file": ("data.npz", data, "application/octet-stream")}, data=form)
    return {"status": r.status_code, **r.json()}


def test_upload_list_get_and_stored_bytes(client: TestClient, db: Database) -> None:
    data = good()
    out = upload(client, data)
    assert out["status"] == 201, out
    assert out["summary"]["n_train"] == 20 and out["summary"]["n_val"] == 6
    assert out["summary"]["input_shape"] == [5]
    assert out["summary"]["label_format"] == "integer" and out["summary"]["num_classes"] == 3
    assert out["summary"]["suggested_loss"] == "sparse_categorical_crossentropy"
    assert out["size_bytes"] == len(data) and out["name"] == "toy"
    # Stored in the database, byte for byte, so a worker anywhere can load it.
    with db.transaction() as s:
        row = s.get(DatasetBlob, out["id"])
        assert row is not None and bytes(row.data) == data
    assert client.get(f"/v1/datasets/{out['id']}").json()["sha256"] == out["sha256"]
    listed = client.get("/v1/datasets").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == out["id"]
    # The filename names it when no name is given.
    assert upload(client, data, name=None)["name"] == "data.npz"


def test_unknown_dataset_is_404(client: TestClient) -> None:
    r = client.get("/v1/datasets/999")
    assert r.status_code == 404 and "POST /v1/datasets" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all", "not an npz archive"),
        (b"", "empty"),
        (npz(x_train=np.zeros((4, 2))), "lacks y_train"),
        (npz(x_train=np.zeros((4, 2)), y_train=np.zeros(3, dtype=int)), "4 examples but y_train has 3"),
        (
            npz(
                x_train=np.zeros((4, 2)), y_train=np.arange(4) % 2, x_val=np.zeros((2, 3)), y_val=np.zeros(2)
            ),
            "x_val examples have shape",
        ),
        (npz(x_train=np.array([[1.0, np.nan]] * 4), y_train=np.arange(4) % 2), "NaN or infinite"),
        (npz(x_train=np.array([["a", "b"]] * 4), y_train=np.arange(4) % 2), "numeric array"),
        (npz(x_train=np.zeros((4, 2)), y_train=np.array([[1, 1], [0, 1], [1, 0], [0, 1]])), "not one-hot"),
        (npz(x_train=np.zeros((4, 2)), y_train=np.array([0, -1, 1, 0])), "negative labels"),
        (npz(x_train=np.zeros((4, 2)), y_train=np.zeros(4, dtype=int)), "single class"),
        (
            npz(x_train=np.zeros((4, 2)), y_train=np.arange(4) % 2, extra=np.zeros(2)),
            "unexpected arrays extra",
        ),
    ],
    ids=[
        "not_npz",
        "empty",
        "missing_y",
        "mismatched_n",
        "mismatched_val_shape",
        "nan",
        "strings",
        "bad_one_hot",
        "negative",
        "one_class",
        "extra_key",
    ],
)
def test_rejections_say_what_is_wrong(client: TestClient, data: bytes, message: str) -> None:
    out = upload(client, data)
    assert out["status"] == 422 and out["error"] == "invalid_upload", out
    assert message in out["detail"]
    assert client.get("/v1/datasets").json()["total"] == 0


def test_missing_file_field_is_422(client: TestClient) -> None:
    r = client.post("/v1/datasets", data={"name": "x"})
    assert r.status_code == 422 and "file" in r.json()["detail"]


def test_upload_needs_a_token(anon_client: TestClient) -> None:
    r = anon_client.post("/v1/datasets", files={"file": ("d.npz", good(), "application/octet-stream")})
    assert r.status_code == 401


@pytest.fixture
def small_limit_client(db_url: str, token: str, db: Database) -> Iterator[TestClient]:
    settings = make_settings(db_url, max_upload_bytes=4096)
    with TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_oversize_upload_is_413(small_limit_client: TestClient) -> None:
    big = npz(x_train=np.zeros((200, 10), dtype=np.float32), y_train=np.arange(200) % 2)
    assert len(big) > 4096
    out = upload(small_limit_client, big)
    assert out["status"] == 413 and "4096 bytes" in out["detail"], out
    assert small_limit_client.get("/v1/datasets").json()["total"] == 0
    # Under the limit is fine on the same server.
    assert (
        upload(small_limit_client, npz(x_train=np.zeros((8, 2)), y_train=np.arange(8) % 2))["status"] == 201
    )


def test_oversize_body_without_content_length_is_refused_while_reading(
    small_limit_client: TestClient,
) -> None:
    """A chunked body (no Content-Length) is cut off once it passes the limit."""
    big = npz(x_train=np.zeros((200, 10), dtype=np.float32), y_train=np.arange(200) % 2)
    boundary = "xyzboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.npz"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = small_limit_client.post(
        "/v1/datasets",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413, r.text
    assert small_limit_client.get("/v1/datasets").json()["total"] == 0
