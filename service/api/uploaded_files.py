"""Multipart uploads (a dataset's .npz, a model's .keras): the form read with the server's size
limit, the same refusals for every upload route, and the request body the OpenAPI document shows.

The form is parsed here rather than by FastAPI so that a body cut off at the size limit is a 413,
not a generic "error parsing the body".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile as StarletteUpload

from service.core.errors import InvalidUpload, LimitExceeded

_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadedForm:
    data: bytes  # the file's bytes, not empty
    filename: str | None
    fields: dict[str, str]  # the form's text fields


async def read_limited(upload: StarletteUpload, limit: int, *, what: str = "the dataset") -> bytes:
    """The uploaded file's bytes; ``LimitExceeded`` as soon as they pass ``limit``."""
    chunks: list[bytes] = []
    seen = 0
    while chunk := await upload.read(_CHUNK):
        seen += len(chunk)
        if seen > limit:
            hint = " (np.savez_compressed helps)" if what == "the dataset" else ""
            raise LimitExceeded(
                f"{what} is over this server's upload limit of {limit} bytes "
                f"(setting SWEEPS_MAX_UPLOAD_BYTES); upload a smaller file{hint}"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload_form(request: Request, limit: int, *, what: str, example: str) -> UploadedForm:
    """The multipart form with its file in the field ``file``; ``example`` is the curl line to show."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidUpload(f"send {what} as multipart/form-data in the field 'file', e.g. {example}")
    form = await request.form(max_files=1, max_fields=4)
    file = form.get("file")
    if not isinstance(file, StarletteUpload):
        raise InvalidUpload(f"the form has no file in the field 'file'; send {what} as in {example}")
    data = await read_limited(file, limit, what=what)
    if not data:
        raise InvalidUpload(f"the uploaded file is empty; send {what} in the multipart field 'file'")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return UploadedForm(data=data, filename=file.filename, fields=fields)


def multipart_body(file_description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for an upload route: a form with ``file`` and ``properties``; ``required``
    lists ``file`` and every property whose schema says ``"required": True`` (taken out)."""
    required = ["file"] + [name for name, schema in properties.items() if schema.pop("required", False)]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": required,
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": file_description},
                            **properties,
                        },
                    }
                }
            },
        }
    }
