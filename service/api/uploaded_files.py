"""Reading an uploaded multipart file with the server's size limit, for every upload route."""

from __future__ import annotations

from starlette.datastructures import UploadFile as StarletteUpload

from service.core.errors import LimitExceeded

_CHUNK = 1 << 20


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
