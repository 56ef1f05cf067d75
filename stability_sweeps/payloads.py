"""What the client sends for a dataset and a model: an in-memory ``.npz`` from numpy arrays, and a
compiled Keras model as its ``to_json()`` and ``get_compile_config()`` or as a ``.keras`` archive.
Keras is never imported here: the model object the caller passes brings it."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class KerasModel(Protocol):
    """The part of ``keras.Model`` the client uses."""

    name: str

    def to_json(self) -> str: ...

    def get_compile_config(self) -> Any: ...

    def save(self, filepath: str) -> None: ...


def npz_bytes(x: Any, y: Any, x_val: Any = None, y_val: Any = None) -> bytes:
    """The arrays as the ``.npz`` ``POST /v1/datasets`` takes (``x_train``, ``y_train``, ``x_val``,
    ``y_val``); the server checks shapes, finiteness and labels and says what is wrong."""
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val (validation_data=(x_val, y_val)), or neither")
    arrays = {"x_train": np.asarray(x), "y_train": np.asarray(y)}
    if x_val is not None:
        arrays |= {"x_val": np.asarray(x_val), "y_val": np.asarray(y_val)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def compile_config(model: KerasModel) -> dict[str, Any] | None:
    """``model.get_compile_config()`` as JSON data (optimizer with its settings, loss, metrics);
    None for a model that was never compiled (the server then takes the loss the labels call for
    and the sweep's optimizer)."""
    config = model.get_compile_config()
    if not config:
        return None
    # Round-trip through JSON so a numpy scalar in a setting fails here, not on the server.
    parsed: dict[str, Any] = json.loads(json.dumps(config, default=_plain))
    return parsed


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a compile setting of type {type(value).__name__} cannot be sent as JSON: {value!r}")


def keras_archive(model: KerasModel | str | os.PathLike[str]) -> tuple[str, bytes]:
    """A ``.keras`` file's name and bytes: read from a path, or ``model.save()`` to a temporary file."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix != ".keras":
            raise ValueError(f"{path} is not a .keras file; save the model with model.save('model.keras')")
        return path.name, path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="stability-sweeps-") as tmp:
        path = Path(tmp) / f"{model.name or 'model'}.keras"
        model.save(str(path))
        return path.name, path.read_bytes()
