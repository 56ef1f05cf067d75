"""Keras losses as a sweep trains with them: any built-in loss that compares one prediction row
with one label row, by Keras name (``"mse"``, ``"mean_squared_error"``, ...) or as its serialized
config (``keras.losses.serialize(loss)``, e.g. ``BinaryCrossentropy(from_logits=True)``), or that
config's JSON. ``LossInfo.spec`` is what the trainers deserialize: the canonical name, or the
config as canonical JSON. Pure Python: the API checks a loss without TensorFlow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from service.core.errors import InvalidUpload

LossFamily = Literal["sparse", "categorical", "binary", "regression"]
TaskKind = Literal["binary", "multiclass", "regression"]

# Canonical Keras loss function name -> the labels it compares predictions with.
LOSS_FAMILY: dict[str, LossFamily] = {
    "sparse_categorical_crossentropy": "sparse",
    "categorical_crossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "categorical_hinge": "categorical",
    "kl_divergence": "categorical",
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
    "hinge": "binary",
    "squared_hinge": "binary",
    "mean_squared_error": "regression",
    "mean_absolute_error": "regression",
    "mean_absolute_percentage_error": "regression",
    "mean_squared_logarithmic_error": "regression",
    "huber": "regression",
    "log_cosh": "regression",
    "poisson": "regression",
}
# Keras' other names for the same functions, and the classes of keras.losses.
LOSS_ALIASES: dict[str, str] = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "bce": "binary_crossentropy",
    "huber_loss": "huber",
    "logcosh": "log_cosh",
}
LOSS_CLASSES: dict[str, str] = {
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
    "CategoricalHinge": "categorical_hinge",
    "KLDivergence": "kl_divergence",
    "BinaryCrossentropy": "binary_crossentropy",
    "BinaryFocalCrossentropy": "binary_focal_crossentropy",
    "Hinge": "hinge",
    "SquaredHinge": "squared_hinge",
    "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
    "Huber": "huber",
    "LogCosh": "log_cosh",
    "Poisson": "poisson",
}
# Cross-entropies whose best constant prediction is the label prior (its entropy is chance).
PRIOR_ENTROPY_LOSSES = frozenset(
    {"sparse_categorical_crossentropy", "categorical_crossentropy", "kl_divergence", "binary_crossentropy"}
)
# Losses that compare a margin with 0 (labels 0/1 become -1/+1): accuracy thresholds at 0.
MARGIN_LOSSES = frozenset({"hinge", "squared_hinge"})


@dataclass(frozen=True)
class LossInfo:
    """A loss as the sweep trains with it."""

    name: str  # the canonical Keras function name
    family: LossFamily
    spec: str  # what the trainers deserialize: ``name``, or the serialized config as canonical JSON
    from_logits: bool

    @property
    def chance_is_prior_entropy(self) -> bool:
        return self.name in PRIOR_ENTROPY_LOSSES and not self.label_smoothing

    @property
    def label_smoothing(self) -> float:
        if self.spec == self.name:
            return 0.0
        return float(json.loads(self.spec).get("config", {}).get("label_smoothing") or 0.0)

    @property
    def binary_threshold(self) -> float:
        """Where a single output splits class 0 from class 1: 0 for logits and margins, else 0.5."""
        return 0.0 if self.from_logits or self.name in MARGIN_LOSSES else 0.5


def _supported_losses() -> str:
    return ", ".join(sorted(LOSS_FAMILY))


def parse_loss(loss: Any) -> LossInfo:
    """A loss name or serialized loss config (or its JSON) -> ``LossInfo``; ``InvalidUpload`` says
    what is accepted."""
    if isinstance(loss, str) and loss.lstrip().startswith("{"):
        try:
            loss = json.loads(loss)
        except json.JSONDecodeError as exc:
            raise InvalidUpload(f"loss looks like a serialized config but is not JSON ({exc})") from None
    if isinstance(loss, str):
        name = LOSS_ALIASES.get(loss, loss)
        if name not in LOSS_FAMILY:
            raise InvalidUpload(
                f"loss {loss!r} is not a built-in Keras loss the sweep can train with; use one of "
                f"{_supported_losses()} (or its short name: {', '.join(sorted(LOSS_ALIASES))})"
            )
        return LossInfo(name=name, family=LOSS_FAMILY[name], spec=name, from_logits=False)
    if not isinstance(loss, dict):
        raise InvalidUpload(
            "loss must be a Keras loss name or a serialized loss (keras.losses.serialize(loss)); got "
            f"{type(loss).__name__}"
        )
    module = loss.get("module")
    if module not in (None, "keras.losses") or loss.get("registered_name") not in (
        None,
        loss.get("class_name"),
    ):
        raise InvalidUpload(
            f"loss {loss.get('class_name')!r} from module {module!r} is not a built-in Keras loss; "
            "custom losses are not allowed"
        )
    cls = loss.get("class_name")
    if cls == "function" and isinstance(loss.get("config"), str):
        return parse_loss(loss["config"])  # a plain function, serialized
    if not isinstance(cls, str) or cls not in LOSS_CLASSES:
        raise InvalidUpload(
            f"loss class {cls!r} is not supported; use one of {', '.join(sorted(LOSS_CLASSES))} "
            f"or a name: {_supported_losses()}"
        )
    config = loss.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidUpload(f"loss {cls}: its config must be an object, got {type(config).__name__}")
    reduction = config.get("reduction", "sum_over_batch_size")
    if reduction not in ("sum_over_batch_size", "mean", None, "auto"):
        raise InvalidUpload(
            f"loss {cls}: reduction {reduction!r} is not supported; the sweep averages over the batch "
            "(sum_over_batch_size, Keras' default)"
        )
    axis = config.get("axis", -1)
    if axis != -1:
        raise InvalidUpload(f"loss {cls}: axis {axis!r} is not supported; use the last axis (-1)")
    for key, value in config.items():
        if isinstance(value, (dict, list)):
            raise InvalidUpload(
                f"loss {cls}: setting {key!r} must be a plain value, not {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidUpload(f"loss {cls}: setting {key!r} must be finite")
    name = LOSS_CLASSES[cls]
    clean = {"module": "keras.losses", "class_name": cls, "config": config, "registered_name": None}
    return LossInfo(
        name=name,
        family=LOSS_FAMILY[name],
        spec=json.dumps(clean, sort_keys=True, separators=(",", ":")),
        from_logits=bool(config.get("from_logits", False)),
    )


def loss_from_spec(spec: str) -> LossInfo:
    """The ``LossInfo`` of a stored ``LossInfo.spec``."""
    return parse_loss(spec)


def task_kind(family: LossFamily, num_classes: int) -> TaskKind:
    if family == "regression":
        return "regression"
    return "binary" if num_classes == 2 else "multiclass"
