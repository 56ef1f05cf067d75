"""A Keras model's compile settings (``model.get_compile_config()``) as a sweep uses them.

Pure Python (no TensorFlow): the API checks an upload's compile configuration
at once, and the worker turns the stored result back into training settings.

- **Optimizer**: the compiled optimizer (adam, adamw, rmsprop, sgd) and every
  one of its settings become the workload's defaults, named as the sweep spec
  names them (``learning_rate``, ``rho``, ``momentum``, ``epsilon``,
  ``clipnorm``, ...). Every dimension a sweep's space does not vary takes
  these values. A setting the trainers cannot reproduce (``centered=True``,
  ``amsgrad``, ``clipvalue``, EMA, a learning-rate schedule object, ...) is
  refused with what to change, never dropped silently.
- **Loss**: any built-in Keras loss, by name or serialized (``service.core.losses``).
- **Metrics**: built-in Keras metrics by name or serialized config; they are
  recorded (the trainers measure loss and accuracy themselves).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.core.errors import InvalidUpload
from service.core.losses import LossInfo
from service.core.spec_space import APPLIES_TO, OPTIMIZERS, SCHEDULES

# Keras optimizer class -> the spec's name, and each spec parameter it has.
OPTIMIZER_CLASSES = {"Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop", "SGD": "sgd"}
OPTIMIZER_SETTINGS: dict[str, tuple[str, ...]] = {
    "adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "adamw": ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"),
    "rmsprop": ("learning_rate", "rho", "momentum", "epsilon"),
    "sgd": ("learning_rate", "momentum", "nesterov"),
}
# Keras 3 defaults, written out so that the API, the pack trainer and reports can use them
# without constructing optimizers (checked against Keras in the tests).
KERAS_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamw": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.004},
    "rmsprop": {"learning_rate": 1e-3, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
}
DEFAULT_OPTIMIZER = "adam"
# Base-optimizer settings the trainers reproduce only at these values.
_FIXED_SETTINGS: dict[str, tuple[Any, ...]] = {
    "global_clipnorm": (None,),
    "clipvalue": (None,),
    "use_ema": (False,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None, 1),
    "amsgrad": (False,),
    "centered": (False,),
}
# Settings that change nothing in training.
_IGNORED_SETTINGS = frozenset({"name", "ema_momentum", "ema_overwrite_frequency"})

METRIC_NAMES = frozenset(
    {
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "auc",
        "precision",
        "recall",
        "mse",
        "mae",
        "mape",
        "msle",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "root_mean_squared_error",
        "r2_score",
        "log_cosh_error",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "kl_divergence",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "poisson",
        "cosine_similarity",
    }
)


def _number(owner: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidUpload(f"{owner}.{key} must be a finite number, got {value!r}")
    # Keras stores settings as float32; 7 significant digits give back what the user typed.
    return float(f"{float(value):.7g}")


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """A serialized Keras optimizer -> the spec parameters that reproduce it (``optimizer`` included)."""
    owner = "compile_config.optimizer"
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name not in OPTIMIZER_SETTINGS:
            raise InvalidUpload(f"{owner}: {optimizer!r} is not supported; use adam, adamw, rmsprop or sgd")
        return {"optimizer": name}
    if not isinstance(optimizer, dict):
        raise InvalidUpload(f"{owner} must be a serialized Keras optimizer (an object), got {optimizer!r}")
    cls = optimizer.get("class_name")
    if optimizer.get("module") not in (None, "keras.optimizers") or cls not in OPTIMIZER_CLASSES:
        raise InvalidUpload(
            f"{owner}: {cls!r} is not supported; the sweep trains with Adam, AdamW, RMSprop or SGD "
            "(compile the model with one of them)"
        )
    name = OPTIMIZER_CLASSES[cls]
    config = optimizer.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidUpload(f"{owner}.config must be an object")
    out: dict[str, Any] = {"optimizer": name}
    for key, value in config.items():
        where = f"{owner} ({cls}).{key}"
        if key in _IGNORED_SETTINGS:
            continue
        if key in OPTIMIZER_SETTINGS[name]:
            if key == "learning_rate" and isinstance(value, dict):
                raise InvalidUpload(
                    f"{where}: a learning-rate schedule object is not supported; compile with a constant "
                    "learning rate and sweep `schedule` instead"
                )
            out[key] = bool(value) if key == "nesterov" else _number(owner, key, value)
        elif key == "clipnorm":
            if value is not None:
                out["clipnorm"] = _number(owner, key, value)
        elif key == "weight_decay":
            if value not in (None, 0, 0.0):
                raise InvalidUpload(
                    f"{where}={value!r}: weight decay is supported with AdamW only; compile with AdamW "
                    "or without weight_decay"
                )
        elif key in _FIXED_SETTINGS:
            if value not in _FIXED_SETTINGS[key]:
                raise InvalidUpload(
                    f"{where}={value!r} is not supported by the sweep's trainers; compile without it "
                    f"(supported: {', '.join(repr(v) for v in _FIXED_SETTINGS[key])})"
                )
        else:
            raise InvalidUpload(f"{where} is not a setting the sweep knows; compile without it")
    return out


def metric_names(metrics: Any) -> list[str]:
    """Built-in Keras metrics (names or serialized configs) -> their names, checked."""
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        raise InvalidUpload("compile_config.metrics per output is not supported; give a list of metrics")
    if not isinstance(metrics, list):
        metrics = [metrics]
    out: list[str] = []
    for m in metrics:
        if isinstance(m, str):
            name = m
        elif isinstance(m, dict) and m.get("module") in ("keras.metrics", None):
            cfg = m.get("config")
            name = cfg.get("name", "") if isinstance(cfg, dict) else str(cfg or m.get("class_name", ""))
            if m.get("class_name") not in _METRIC_CLASSES and name not in METRIC_NAMES:
                name = ""
        else:
            name = ""
        if not name:
            raise InvalidUpload(
                f"metric {m!r} is not a built-in Keras metric; use names such as "
                f"{', '.join(sorted(METRIC_NAMES)[:8])}, ..."
            )
        if isinstance(m, str) and name not in METRIC_NAMES:
            raise InvalidUpload(
                f"metric {name!r} is not supported; use one of {', '.join(sorted(METRIC_NAMES))}"
            )
        out.append(name)
    return out


_METRIC_CLASSES = frozenset(
    {
        "Accuracy",
        "BinaryAccuracy",
        "CategoricalAccuracy",
        "SparseCategoricalAccuracy",
        "TopKCategoricalAccuracy",
        "SparseTopKCategoricalAccuracy",
        "AUC",
        "Precision",
        "Recall",
        "MeanSquaredError",
        "MeanAbsoluteError",
        "RootMeanSquaredError",
        "R2Score",
        "BinaryCrossentropy",
        "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy",
        "MeanMetricWrapper",
    }
)


@dataclass(frozen=True)
class CompileSettings:
    """What a workload's compile configuration fixes for every sweep on it."""

    params: dict[str, Any]  # the optimizer and its settings, with the spec's names
    loss: Any  # the loss as given (a name or a serialized config), None when absent
    metrics: list[str]

    def full_params(self) -> dict[str, Any]:
        """Every setting of the optimizer: the compiled ones, Keras' defaults for the rest."""
        name = str(self.params.get("optimizer", DEFAULT_OPTIMIZER))
        return {"optimizer": name, **KERAS_DEFAULTS[name], "clipnorm": None, **self.params}

    def record(self, loss: LossInfo) -> dict[str, Any]:
        """The ``compile`` record the API shows (and the worker reads back)."""
        return {
            "params": self.full_params(),
            "loss": loss.name,
            "loss_spec": loss.spec,
            "from_logits": loss.from_logits,
            "metrics": list(self.metrics),
        }


def parse_compile_config(config: Any) -> CompileSettings:
    """``model.get_compile_config()`` -> ``CompileSettings``; refusals name the setting to change."""
    if not isinstance(config, dict):
        raise InvalidUpload("compile_config must be the object model.get_compile_config() returns")
    for key in ("loss_weights", "weighted_metrics"):
        if config.get(key) not in (None, [], {}):
            raise InvalidUpload(f"compile_config.{key} is not supported; compile without {key}")
    params = optimizer_params(config["optimizer"]) if config.get("optimizer") is not None else {}
    return CompileSettings(
        params=params, loss=config.get("loss"), metrics=metric_names(config.get("metrics"))
    )


def resolve_optimizer_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's effective hyperparameters: Keras defaults overridden by ``params``.

    Returns ``optimizer``, every hyperparameter of that optimizer, ``clipnorm``
    (``None`` when off) and ``schedule``. Unknown optimizer/schedule names raise
    ``ValueError`` naming the valid ones.
    """
    name = str(params.get("optimizer", DEFAULT_OPTIMIZER))
    if name not in KERAS_DEFAULTS:
        raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    schedule = str(params.get("schedule", "constant"))
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    out: dict[str, Any] = {"optimizer": name}
    for key, default in KERAS_DEFAULTS[name].items():
        if key != "learning_rate" and name not in APPLIES_TO.get(key, OPTIMIZERS):
            continue
        value = params.get(key, default)
        out[key] = bool(value) if isinstance(default, bool) else float(value)
    clip = params.get("clipnorm")
    out["clipnorm"] = float(clip) if clip else None
    out["schedule"] = schedule
    return out


def trained_with(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """What a configuration trained with: its ``params`` over the workload's ``defaults`` (compiled
    or the preset's), the optimizer's settings completed with Keras' defaults, as the trainers
    merge them (``{**defaults, **params}``)."""
    merged = {**defaults, **params}
    out = resolve_optimizer_params(merged)
    for key in ("batch_size", "shuffle"):
        if key in merged:
            out[key] = merged[key]
    return out
