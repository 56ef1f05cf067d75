"""A ``.keras`` archive (``model.save("m.keras")``), checked before it is opened.

A ``.keras`` file is a zip of ``config.json`` (the model, as ``to_json()``
writes it, plus its ``compile_config``), ``metadata.json`` and, when saved
with weights, ``model.weights.h5``. Before anything is read the archive's
directory is checked: at most ``MAX_MEMBERS`` members, only those three names
(so no path traversal and no absolute names), each member's declared size
under a limit and its compression ratio below ``MAX_RATIO`` (a zip bomb
declares gigabytes in a few kilobytes); every member is then read with a cap
at its declared size, so a directory that lies is caught too. The config goes
through the same safe-mode loading as a model JSON
(``uploads.safe_model_from_json``: no Lambda layers, no custom objects, no
unknown layers) and the weights are loaded into that model, which checks they
fit it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

from service.core.errors import InvalidUpload, LimitExceeded
from service.core.uploads import MAX_MODEL_JSON_CHARS, safe_model_from_json

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
EXPECTED = (CONFIG, METADATA, WEIGHTS)
MAX_MEMBERS = len(EXPECTED)
MAX_RATIO = 200  # uncompressed / compressed; JSON compresses ~10x, a bomb ~1000x
_SMALL = 1 << 20  # members under 1 MiB may compress as well as they like
_JSON_LIMIT = MAX_MODEL_JSON_CHARS
_HOW = "save the model with model.save('m.keras') and upload that file unchanged"


@dataclass(frozen=True)
class KerasArchive:
    """What the archive holds, checked: the model's JSON, its compile config, its weights if saved."""

    model_json: str
    compile_config: dict[str, Any] | None
    weights: bytes | None


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"member {name!r} has an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return f"member {name!r} climbs out of the archive (path traversal)"
    if name not in EXPECTED:
        return f"member {name!r} is not part of a .keras file (expected {', '.join(EXPECTED)})"
    return None


def check_archive(data: bytes, *, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The archive's members after the checks in the module docstring; raises on the first problem."""
    if len(data) > max_bytes:
        raise LimitExceeded(
            f"the .keras file is over this server's upload limit of {max_bytes} bytes "
            "(setting SWEEPS_MAX_UPLOAD_BYTES)"
        )
    if not data.startswith(b"PK\x03\x04"):
        raise InvalidUpload(
            f"the file is not a .keras archive (a zip file; it starts with {data[:8]!r}); {_HOW}"
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidUpload(f"the .keras archive cannot be read ({exc}); {_HOW}") from None
    if len(members) > MAX_MEMBERS:
        raise InvalidUpload(
            f"the .keras archive has {len(members)} members; a .keras file has at most {MAX_MEMBERS} "
            f"({', '.join(EXPECTED)}); {_HOW}"
        )
    names = [m.filename for m in members]
    if len(set(names)) != len(names):
        raise InvalidUpload(f"the .keras archive repeats a member name ({', '.join(names)}); {_HOW}")
    for info in members:
        problem = _member_problem(info)
        if problem is not None:
            raise InvalidUpload(f"the .keras archive is refused: {problem}; {_HOW}")
        limit = max_bytes if info.filename == WEIGHTS else _JSON_LIMIT
        if info.file_size > limit:
            raise LimitExceeded(
                f"the .keras archive's {info.filename} declares {info.file_size} bytes unpacked, over the "
                f"limit of {limit} bytes"
            )
        if info.file_size > _SMALL and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise InvalidUpload(
                f"the .keras archive's {info.filename} unpacks {info.file_size} bytes from "
                f"{info.compress_size} (ratio over {MAX_RATIO}): refused as a zip bomb; {_HOW}"
            )
    if CONFIG not in names:
        raise InvalidUpload(f"the .keras archive has no {CONFIG} (the model's architecture); {_HOW}")
    return members


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with zf.open(info) as f:
        out = f.read(info.file_size + 1)  # never more than declared, plus one byte to catch a liar
    if len(out) != info.file_size:
        raise InvalidUpload(f"the .keras archive's {info.filename} is not the size its directory declares")
    return out


def read_archive(data: bytes, *, max_bytes: int) -> KerasArchive:
    """Check the archive, then read its config and weights (``InvalidUpload`` / ``LimitExceeded``)."""
    members = {m.filename: m for m in check_archive(data, max_bytes=max_bytes)}
    zf = zipfile.ZipFile(io.BytesIO(data))
    try:
        raw = _read(zf, members[CONFIG])
        weights = _read(zf, members[WEIGHTS]) if WEIGHTS in members else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidUpload(f"the .keras archive is damaged ({type(exc).__name__}: {exc}); {_HOW}") from None
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidUpload(f"the .keras archive's {CONFIG} is not JSON ({exc}); {_HOW}") from None
    if not isinstance(config, dict):
        raise InvalidUpload(f"the .keras archive's {CONFIG} is not a Keras model config; {_HOW}")
    compile_config = config.pop("compile_config", None)
    if compile_config is not None and not isinstance(compile_config, dict):
        raise InvalidUpload(f"the .keras archive's compile_config is not an object; {_HOW}")
    return KerasArchive(model_json=json.dumps(config), compile_config=compile_config, weights=weights)


def load_with_weights(model_json: str, weights: bytes | None) -> tuple[Any, list[str]]:
    """The model in safe mode, with the saved weights when there are some; (model, warnings)."""
    model, warnings = safe_model_from_json(model_json)
    if weights is not None:
        set_saved_weights(model, weights)
    return model, warnings


def set_saved_weights(model: Any, weights: bytes) -> None:
    """Load a ``model.weights.h5`` into ``model``; a mismatch is an ``InvalidUpload``."""
    fd, path = tempfile.mkstemp(suffix=".weights.h5")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(weights)
        try:
            model.load_weights(path)
        except Exception as exc:  # h5py / Keras raise many kinds for a file that does not fit
            raise InvalidUpload(
                f"the .keras archive's weights do not load into its model ({type(exc).__name__}: {exc}); "
                f"{_HOW}"
            ) from None
    finally:
        os.unlink(path)
