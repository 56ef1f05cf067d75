"""Validation of user workloads: an ``.npz`` dataset and a Keras model JSON.

Pure functions used by the API when a user uploads (so that mistakes are
reported at once, with how to fix them) and by the worker when it rebuilds
the workload. Keras is imported inside the functions that need it, so the
API imports this module without loading TensorFlow.

Dataset (``np.savez``/``np.savez_compressed``, loaded with
``allow_pickle=False``): ``x_train`` and ``y_train`` are required,
``x_val``/``y_val`` optional and only together; nothing else. Labels are one
of:

- **integer**: shape ``(n,)`` or ``(n, 1)``, non-negative whole numbers (an
  integer dtype or a float dtype holding whole numbers); ``num_classes =
  max + 1`` over train and validation.
- **one_hot**: shape ``(n, C)`` with ``C >= 2``, values 0/1, one 1 per row;
  ``num_classes = C``.
- **regression**: shape ``(n,)`` or ``(n, 1)`` floats that are not all
  whole numbers (or any such labels with ``task="regression"``); ``num_classes
  = 0``.

Model JSON (``model.to_json()``) is deserialised in Keras safe mode with no
custom objects, after a structural check that refuses ``Lambda`` layers,
layers that load or wrap foreign code (``TFSMLayer``, ``TorchModuleWrapper``,
``JaxLayer``, ``FlaxLayer``), serialized Python functions and any object from
a module outside ``keras``. Fixed ``seed`` values in the JSON (initializers,
dropout) are removed, because a sweep's init seed must decide the weights.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from service.core.errors import InvalidUpload

LabelFormat = Literal["integer", "one_hot", "regression"]
Task = Literal["auto", "classification", "regression"]

REQUIRED_KEYS = ("x_train", "y_train")
OPTIONAL_KEYS = ("x_val", "y_val")
LOSS_FOR_FORMAT: dict[str, str] = {
    "one_hot": "categorical_crossentropy",
    "integer": "sparse_categorical_crossentropy",
    "regression": "mse",
}
# Layers that run code that is not a Keras built-in (or load it from disk).
FORBIDDEN_CLASSES = frozenset(
    {"Lambda", "__lambda__", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
)
MAX_MODEL_JSON_CHARS = 5_000_000


@dataclass(frozen=True)
class DatasetSummary:
    n_train: int
    n_val: int
    input_shape: tuple[int, ...]
    label_format: LabelFormat
    # 0 for regression.
    num_classes: int
    x_dtype: str
    # Examples per class in the training set (None for regression).
    class_counts: list[int] | None = field(default=None)

    @property
    def suggested_loss(self) -> str:
        return LOSS_FOR_FORMAT[self.label_format]


_ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive of .npy files
_NPY_MAGIC = b"\x93NUMPY"


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    # Checked first: numpy would take any other bytes for a pickle and say so.
    if data.startswith(_NPY_MAGIC):
        raise InvalidUpload(
            "the dataset is a single .npy array, not an .npz archive; save it with "
            "np.savez('data.npz', x_train=..., y_train=...)"
        )
    if not data.startswith(_ZIP_MAGIC):
        raise InvalidUpload(
            "the file is not an npz archive (an .npz is a zip file of arrays; this one starts with "
            f"{data[:8]!r}); save it with np.savez('data.npz', x_train=..., y_train=...)"
        )
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidUpload(
            f"the dataset is not a readable .npz file ({exc}); save it with "
            "np.savez('data.npz', x_train=..., y_train=..., x_val=..., y_val=...)"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InvalidUpload(
            "the dataset is a single .npy array, not an .npz archive; save it with "
            "np.savez('data.npz', x_train=..., y_train=...)"
        )
    with archive:
        keys = list(archive.files)
        unknown = sorted(set(keys) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise InvalidUpload(
                f"the .npz has unexpected arrays {', '.join(unknown)}; use exactly "
                "x_train, y_train and optionally x_val, y_val"
            )
        missing = [k for k in REQUIRED_KEYS if k not in keys]
        if missing:
            raise InvalidUpload(
                f"the .npz lacks {', '.join(missing)}; it needs x_train and y_train "
                "(and optionally x_val with y_val)"
            )
        if ("x_val" in keys) != ("y_val" in keys):
            raise InvalidUpload("give x_val and y_val together, or neither")
        out: dict[str, np.ndarray] = {}
        for key in keys:
            try:
                out[key] = archive[key]
            except ValueError as exc:
                raise InvalidUpload(
                    f"{key} cannot be read without pickle ({exc}); store plain numeric arrays, not objects"
                ) from None
    return out


def _check_numeric(key: str, a: np.ndarray) -> None:
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InvalidUpload(
            f"{key} has dtype {a.dtype}; use a numeric array (float32 features, integer or float labels)"
        )
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        bad = int(np.size(a) - np.isfinite(a).sum())
        raise InvalidUpload(
            f"{key} contains {bad} NaN or infinite value(s); remove or impute them before uploading"
        )


def _label_format(key: str, y: np.ndarray, task: Task) -> LabelFormat:
    if y.ndim == 0 or y.ndim > 2:
        raise InvalidUpload(f"{key} has shape {y.shape}; labels must be (n,), (n, 1) or one-hot (n, C)")
    if y.ndim == 2 and y.shape[1] > 1:
        if task == "regression":
            raise InvalidUpload(
                f"{key} has {y.shape[1]} columns; regression supports one target, shape (n,) or (n, 1)"
            )
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise InvalidUpload(
                f"{key} has {y.shape[1]} columns but is not one-hot: every row must hold 0s and "
                "exactly one 1 (for integer class labels use shape (n,))"
            )
        return "one_hot"
    whole = np.issubdtype(y.dtype, np.integer) or bool(np.all(np.mod(y, 1) == 0))
    if task == "regression" or (task == "auto" and not whole):
        return "regression"
    if not whole:
        raise InvalidUpload(f"{key} holds non-integer values; class labels must be whole numbers 0..C-1")
    if (y < 0).any():
        raise InvalidUpload(f"{key} has negative labels (min {y.min()}); class labels must be 0..C-1")
    return "integer"


def inspect_npz(data: bytes, *, task: Task = "auto") -> DatasetSummary:
    """Check an uploaded dataset and describe it; ``InvalidUpload`` says what is wrong and how to fix it."""
    arrays = _load_npz(data)
    for key, a in arrays.items():
        _check_numeric(key, a)
    x, y = arrays["x_train"], arrays["y_train"]
    if x.ndim < 2 or x.shape[0] == 0:
        raise InvalidUpload(f"x_train has shape {x.shape}; it must be (n, features...) with n >= 1")
    if y.shape[:1] != x.shape[:1]:
        raise InvalidUpload(
            f"x_train has {x.shape[0]} examples but y_train has {y.shape[0] if y.ndim else 0}"
        )
    fmt = _label_format("y_train", y, task)
    xv, yv = arrays.get("x_val"), arrays.get("y_val")
    n_val = 0
    if xv is not None and yv is not None:
        if xv.shape[1:] != x.shape[1:]:
            raise InvalidUpload(
                f"x_val examples have shape {xv.shape[1:]} but x_train examples {x.shape[1:]}"
            )
        if yv.shape[:1] != xv.shape[:1]:
            raise InvalidUpload(
                f"x_val has {xv.shape[0]} examples but y_val has {yv.shape[0] if yv.ndim else 0}"
            )
        if yv.shape[1:] != y.shape[1:]:
            raise InvalidUpload(f"y_val has shape {yv.shape[1:]} per example but y_train {y.shape[1:]}")
        fmt_val = _label_format("y_val", yv, "regression" if fmt == "regression" else "classification")
        if fmt_val != fmt:
            raise InvalidUpload(f"y_train labels are {fmt} but y_val labels are {fmt_val}; use one format")
        n_val = int(xv.shape[0])
    counts: list[int] | None = None
    if fmt == "one_hot":
        num_classes = int(y.shape[1])
        counts = [int(c) for c in y.sum(axis=0)]
    elif fmt == "integer":
        labels = y.reshape(-1).astype(np.int64)
        top = int(labels.max())
        if yv is not None and yv.size:
            top = max(top, int(yv.max()))
        num_classes = top + 1
        counts = np.bincount(labels, minlength=num_classes).tolist()
    else:
        num_classes = 0
    if fmt != "regression" and num_classes < 2:
        raise InvalidUpload("the labels hold a single class; a classifier needs at least 2 classes")
    return DatasetSummary(
        n_train=int(x.shape[0]),
        n_val=n_val,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        label_format=fmt,
        num_classes=num_classes,
        x_dtype=str(x.dtype),
        class_counts=counts,
    )


def load_npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` already accepted by ``inspect_npz``."""
    return _load_npz(data)


def _sanitise(node: Any, path: str, warnings: list[str]) -> None:
    if isinstance(node, dict):
        cls = node.get("class_name")
        if isinstance(cls, str) and cls in FORBIDDEN_CLASSES:
            raise InvalidUpload(
                f"the model uses a {cls} layer at {path or 'top level'}, which runs custom code; "
                "only built-in Keras layers are allowed - replace it with built-in layers"
            )
        module = node.get("module")
        if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            raise InvalidUpload(
                f"the model refers to {cls or 'an object'} from module {module!r} at {path or 'top level'}; "
                "only built-in Keras objects are allowed (no custom layers, functions or classes)"
            )
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            raise InvalidUpload(
                f"the model uses the custom object {registered!r} at {path or 'top level'}; "
                "only built-in Keras objects are allowed"
            )
        if "seed" in node and isinstance(node["seed"], int) and not isinstance(node["seed"], bool):
            warnings.append(
                f"removed fixed seed {node['seed']} at {path} so that each sweep seed draws its own"
            )
            node["seed"] = None
        for key, value in node.items():
            _sanitise(value, f"{path}.{key}" if path else str(key), warnings)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _sanitise(value, f"{path}[{i}]", warnings)


def safe_model_from_json(model_json: str) -> tuple[Any, list[str]]:
    """Deserialise a model JSON in safe mode after the structural check; returns (model, warnings)."""
    if len(model_json) > MAX_MODEL_JSON_CHARS:
        raise InvalidUpload(
            f"the model JSON is over {MAX_MODEL_JSON_CHARS} characters; upload the architecture only"
        )
    try:
        config = json.loads(model_json)
    except json.JSONDecodeError as exc:
        raise InvalidUpload(
            f"the model is not valid JSON ({exc}); send the output of model.to_json()"
        ) from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidUpload("the model JSON is not a Keras model config; send the output of model.to_json()")
    warnings: list[str] = []
    _sanitise(config, "", warnings)

    import keras

    try:
        model = keras.saving.deserialize_keras_object(config, custom_objects=None, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError/... for unknown or bad layers
        raise InvalidUpload(
            f"the model JSON could not be loaded in safe mode: {type(exc).__name__}: {exc}. "
            "Use only built-in Keras layers and save it with model.to_json()"
        ) from None
    if not isinstance(model, keras.Model):
        raise InvalidUpload(f"the JSON describes a {type(model).__name__}, not a Keras model")
    return model, warnings
