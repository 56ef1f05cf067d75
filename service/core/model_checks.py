"""Does an uploaded Keras model fit its dataset and its loss? Checked once, at upload.

The loss decides the kind of task (``losses.task_kind``) and so what
the labels and the model's output must look like:

- ``sparse`` losses: integer labels 0..C-1, at least C outputs.
- ``categorical`` losses: one-hot labels with C columns, C outputs.
- ``binary`` losses (binary cross-entropy, focal, hinge): labels 0/1, one output
  (a sigmoid probability, or a logit with ``from_logits=True``, or a margin for
  hinge).
- ``regression`` losses: one numeric target, one output. Whole-number targets
  (the diabetes progression scores, counts) are read as regression targets, not
  as class ids, when the loss is a regression loss.

Keras is imported inside the functions (the API process loads TensorFlow only
when a model is uploaded).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from service.core.errors import InvalidUpload
from service.core.losses import LossInfo, parse_loss, task_kind
from service.core.uploads import DatasetSummary, safe_model_from_json

_FAMILY_LABELS = {
    "sparse": ("integer",),
    "categorical": ("one_hot",),
    "binary": ("integer",),
    "regression": ("regression", "integer"),
}
_LOSS_FOR_LABELS = {
    "integer": "sparse_categorical_crossentropy (or binary_crossentropy with one sigmoid output)",
    "one_hot": "categorical_crossentropy",
    "regression": "mean_squared_error",
}


def summary_for_loss(summary: DatasetSummary, loss: LossInfo) -> DatasetSummary:
    """The dataset as the loss reads it; ``InvalidUpload`` when labels and loss do not go together."""
    fmt = summary.label_format
    if fmt not in _FAMILY_LABELS[loss.family]:
        raise InvalidUpload(
            f"loss {loss.name!r} does not fit {fmt} labels; use {_LOSS_FOR_LABELS[fmt]} "
            "(or convert the labels)"
        )
    if loss.family == "regression" and fmt != "regression":
        return replace(summary, label_format="regression", num_classes=0, class_counts=None)
    if loss.family == "binary" and summary.num_classes != 2:
        raise InvalidUpload(
            f"loss {loss.name!r} is for two classes (labels 0 and 1) but the labels hold "
            f"{summary.num_classes} classes; use sparse_categorical_crossentropy"
        )
    return summary


def _shape_matches(expected: tuple[int | None, ...], actual: tuple[int, ...]) -> bool:
    return len(expected) == len(actual) and all(
        e is None or e == a for e, a in zip(expected, actual, strict=True)
    )


def _output_units(model: Any, summary: DatasetSummary) -> int:
    if isinstance(model.inputs, list) and len(model.inputs) > 1:
        raise InvalidUpload(
            f"the model has {len(model.inputs)} inputs; only single-input models are supported"
        )
    if not model.built:
        try:
            model.build((None, *summary.input_shape))
        except Exception as exc:
            raise InvalidUpload(
                f"the model cannot be built for inputs of shape {summary.input_shape}: {exc}"
            ) from None
    expected = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    if expected is not None and not _shape_matches(expected, summary.input_shape):
        raise InvalidUpload(
            f"the model expects inputs of shape {expected} but the dataset's examples have shape "
            f"{summary.input_shape}; change the model's Input or reshape x_train"
        )
    import keras

    try:
        out = model(np.zeros((2, *summary.input_shape), dtype=np.float32), training=False)
    except Exception as exc:
        raise InvalidUpload(f"the model fails on inputs of shape {summary.input_shape}: {exc}") from None
    out_shape = tuple(int(d) for d in keras.ops.shape(out))
    if len(out_shape) != 2:
        raise InvalidUpload(
            f"the model's output has shape {out_shape[1:]} per example; it must be a vector (units,)"
        )
    return out_shape[1]


def _check_units(units: int, summary: DatasetSummary, loss: LossInfo, warnings: list[str]) -> None:
    if loss.family == "categorical" and units != summary.num_classes:
        raise InvalidUpload(
            f"the model has {units} outputs but the one-hot labels have {summary.num_classes} classes"
        )
    if loss.family == "sparse":
        if units < summary.num_classes:
            raise InvalidUpload(
                f"the model has {units} outputs but the labels go up to {summary.num_classes - 1}; "
                f"give the last layer at least {summary.num_classes} units"
            )
        if units > summary.num_classes:
            warnings.append(f"the model has {units} outputs for {summary.num_classes} classes")
    if loss.family == "binary" and units != 1:
        raise InvalidUpload(
            f"the model has {units} outputs; {loss.name} needs one (Dense(1, activation='sigmoid'), or "
            "a logit with from_logits=True); for one output per class use sparse_categorical_crossentropy"
        )
    if loss.family == "regression" and units != 1:
        raise InvalidUpload(f"the model has {units} outputs; a regression target needs 1")


def _activation_warning(model: Any, loss: LossInfo) -> str | None:
    last = model.layers[-1] if model.layers else None
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if loss.family in ("sparse", "categorical") and not loss.from_logits and loss.name != "categorical_hinge":
        if activation != "softmax":
            return (
                f"the last layer's activation is {activation!r}, not softmax: cross-entropy is computed on "
                "its outputs as probabilities (from_logits=False)"
            )
    if loss.name in ("binary_crossentropy", "binary_focal_crossentropy") and not loss.from_logits:
        if activation != "sigmoid":
            return (
                f"the last layer's activation is {activation!r}, not sigmoid: {loss.name} reads its output "
                "as a probability (from_logits=False)"
            )
    return None


def inspect_model(model: Any, summary: DatasetSummary, loss: Any, warnings: list[str]) -> dict[str, Any]:
    """Check a loaded model against the dataset and the loss (a name or serialized config).

    Returns ``input_shape``, ``output_units``, ``num_params``, ``layers``
    (class names), ``loss`` (canonical name), ``loss_spec`` (what the trainers
    deserialize), ``from_logits``, ``task`` and ``warnings``.
    """
    info = parse_loss(loss)
    summary = summary_for_loss(summary, info)
    units = _output_units(model, summary)
    _check_units(units, summary, info, warnings)
    warning = _activation_warning(model, info)
    if warning is not None:
        warnings.append(warning)
    return {
        "input_shape": list(summary.input_shape),
        "output_units": units,
        "num_params": int(model.count_params()),
        "layers": [type(layer).__name__ for layer in model.layers],
        "loss": info.name,
        "loss_spec": info.spec,
        "from_logits": info.from_logits,
        "task": task_kind(info.family, summary.num_classes),
        "warnings": warnings,
    }


def inspect_keras_model(model_json: str, summary: DatasetSummary, loss: Any) -> dict[str, Any]:
    """Load a ``model.to_json()`` safely, build it once and check it (``inspect_model``)."""
    model, warnings = safe_model_from_json(model_json)
    return inspect_model(model, summary, loss, warnings)
