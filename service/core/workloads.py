"""Catalogue of the built-in workloads ("presets"), without TensorFlow.

The API lists these at ``GET /v1/workloads`` and validates a sweep's
``workload: {preset, params}`` block with ``resolve_preset_params`` before
anything is queued; the worker builds the actual Keras workload from the
resolved params (``workers.workloads.registry.build_preset``). This module is
the single source of the presets' parameters and defaults.

- ``params``: the workload's own parameters (data sizes, model width, data
  generation seed), which define *what* is trained.
- ``default_params``: the training setup of the user who reported the
  problem (optimizer, learning rate, batch size, betas/rho); a sweep's
  ``space`` overrides them key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.errors import InvalidSpec, NotFound


@dataclass(frozen=True)
class ParamRule:
    """Type and bounds of one workload parameter."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    report: str | None
    params: dict[str, Any]
    default_params: dict[str, Any]
    num_classes: int
    loss: str
    # One line per parameter in ``params``: what it means and its bounds.
    param_docs: dict[str, str] = field(default_factory=dict)


_SIZE = 100_000


def _rules_doc(rules: Mapping[str, ParamRule]) -> dict[str, str]:
    out = {}
    for name, r in rules.items():
        bounds = ""
        if r.choices is not None:
            bounds = f" One of: {', '.join(map(str, r.choices))}."
        elif r.low is not None or r.high is not None:
            bounds = f" Range [{r.low}, {r.high}]."
        out[name] = r.help + bounds
    return out


_RULES: dict[str, dict[str, ParamRule]] = {
    "sensor_lstm": {
        "n_train": ParamRule(98, "training sequences, 6 classes as balanced as possible", 6, _SIZE),
        "n_val": ParamRule(0, "validation sequences (0: none, as in the report)", 0, _SIZE),
        "timesteps": ParamRule(100, "samples per sequence (50 Hz motor current)", 2, 10_000),
        "units": ParamRule(32, "LSTM units", 1, 4096),
        "noise": ParamRule(0.02, "sensor noise std in amperes", 0.0, 10.0),
        "data_seed": ParamRule(0, "seed of the data generation", 0, 2**31 - 1),
    },
    "cos_arccos": {
        "n_train": ParamRule(100, "training sequences, half cos(t), half arccos(t)", 2, _SIZE),
        "n_val": ParamRule(0, "validation sequences", 0, _SIZE),
        "timesteps": ParamRule(100, "samples per sequence", 2, 10_000),
        "units": ParamRule(32, "LSTM units", 1, 4096),
        "noise": ParamRule(0.05, "additive Gaussian noise std", 0.0, 10.0),
        "data_seed": ParamRule(0, "seed of the data generation", 0, 2**31 - 1),
    },
    "sequence_rnn": {
        "n_train_per_class": ParamRule(64, "training sequences per kind (4 kinds)", 1, _SIZE),
        "n_val_per_class": ParamRule(16, "validation sequences per kind", 0, _SIZE),
        "timesteps": ParamRule(50, "samples per sequence", 2, 10_000),
        "units": ParamRule(32, "recurrent units", 1, 4096),
        "cell": ParamRule("simple_rnn", "recurrent layer", choices=("simple_rnn", "gru", "lstm")),
        "noise": ParamRule(0.1, "additive Gaussian noise std", 0.0, 10.0),
        "data_seed": ParamRule(0, "seed of the data generation", 0, 2**31 - 1),
    },
    "pixel_color": {
        "image_size": ParamRule(16, "image side S (the report used 224; keep it small on CPU)", 2, 1024),
        "n_train_per_class": ParamRule(1500, "training images per class", 1, _SIZE),
        "n_val_per_class": ParamRule(500, "validation images per class", 0, _SIZE),
        "units": ParamRule(112, "units of the Dense layer applied to every pixel", 1, 4096),
        "dropout": ParamRule(0.4, "dropout rate after that layer", 0.0, 0.99),
        "labels": ParamRule(
            "integer",
            "integer labels (sparse loss) or one-hot over the 3 outputs",
            choices=("integer", "one_hot"),
        ),
        "pixel_scale": ParamRule(
            "unit",
            "pixel values in 0..1 (unit) or 0..255 (byte: images fed without rescaling)",
            choices=("unit", "byte"),
        ),
        "data_seed": ParamRule(0, "seed of the data generation", 0, 2**31 - 1),
    },
    "least_squares": {
        "n": ParamRule(64, "samples (rows of X); default batch size is n (full-batch GD)", 1, _SIZE),
        "d": ParamRule(8, "features (columns of X)", 1, 4096),
        "lambda_max": ParamRule(1.0, "largest Hessian eigenvalue; the edge lr is 2 / lambda_max", 1e-6, 1e6),
        "condition": ParamRule(10.0, "lambda_max / lambda_min (eigenvalues geometric in between)", 1.0, 1e6),
        "noise": ParamRule(0.0, "std of the noise added to y = X w*", 0.0, 100.0),
        "data_seed": ParamRule(0, "seed of X, w* and the noise", 0, 2**31 - 1),
    },
}


def preset_rules(name: str) -> Mapping[str, ParamRule]:
    """Type and bounds of each parameter of a preset (for the OpenAPI document)."""
    return _RULES[name]


def _defaults(name: str) -> dict[str, Any]:
    return {k: r.default for k, r in _RULES[name].items()}


PRESETS: dict[str, PresetInfo] = {
    "sensor_lstm": PresetInfo(
        name="sensor_lstm",
        description=(
            "Report 1, 'fluctuating LSTM loss': a robot's motor-current sequences (100 timesteps, "
            "1 feature, 50 Hz) classified by floor surface (tile, wood, concrete, carpet, gravel, grass). "
            "Current = base load set by the surface's friction + wheel/gait oscillation with a "
            "surface-dependent frequency and amplitude + roughness and sensor noise, standardised with "
            "fixed constants ((i - 1 A) / 0.4 A); base load, frequency, amplitude and phase vary per "
            "sequence, so neighbouring surfaces overlap: a tuned LSTM (RMSprop lr 3e-3, batch 16) "
            "passes 90% training accuracy in 20-40 epochs, not in one. Model as the "
            "user wrote it: LSTM(units) -> Dense(6, softmax), categorical cross-entropy, one-hot labels, "
            "98 training sequences. Sweep batch_size and learning_rate to see fluctuation grow as the "
            "batch shrinks (mini-batch noise; RMSprop rho=0.9 is a short memory)."
        ),
        report="1",
        params=_defaults("sensor_lstm"),
        default_params={"optimizer": "rmsprop", "learning_rate": 1e-3, "rho": 0.9, "batch_size": 32},
        num_classes=6,
        loss="categorical_crossentropy",
        param_docs=_rules_doc(_RULES["sensor_lstm"]),
    ),
    "cos_arccos": PresetInfo(
        name="cos_arccos",
        description=(
            "Report 1's sanity check: 2 classes, cos(t) versus arccos(t) sequences over a random "
            "sub-interval of t in [-1, 1] (arccos' domain) with small noise; same model shape as "
            "sensor_lstm with 2 outputs. Should train easily at the user's settings."
        ),
        report="1",
        params=_defaults("cos_arccos"),
        default_params={"optimizer": "rmsprop", "learning_rate": 1e-3, "rho": 0.9, "batch_size": 32},
        num_classes=2,
        loss="categorical_crossentropy",
        param_docs=_rules_doc(_RULES["cos_arccos"]),
    ),
    "sequence_rnn": PresetInfo(
        name="sequence_rnn",
        description=(
            "Report 2, 'training loss falls, then rises': 4 kinds of sequences (sine, square, sawtooth, "
            "chirp) with random frequency, phase and amplitude plus noise, classified by a recurrent "
            "network (SimpleRNN by default) -> Dense(4, softmax), cross-entropy, Adam lr 2e-4 with "
            "betas (0.5, 0.999). At too high a learning rate the loss reaches its minimum and rises "
            "again; sweep learning_rate x beta_1 and try clipnorm or a decaying schedule."
        ),
        report="2",
        params=_defaults("sequence_rnn"),
        default_params={
            "optimizer": "adam",
            "learning_rate": 2e-4,
            "beta_1": 0.5,
            "beta_2": 0.999,
            "batch_size": 32,
        },
        num_classes=4,
        loss="categorical_crossentropy",
        param_docs=_rules_doc(_RULES["sequence_rnn"]),
    ),
    "pixel_color": PresetInfo(
        name="pixel_color",
        description=(
            "Report 3, 'same data, sometimes stuck at 50%': S x S x 3 images of uniform noise whose "
            "class is the colour of one fixed pixel (the centre): pure red (class 0) or pure green "
            "(class 1). The user's exact model: Dense(units, relu) applied to every pixel, "
            "Dropout(0.4), Flatten, Dense(3, softmax) - three outputs for two classes, as written. "
            "Adam lr 1e-3, 1500/500 images per class. The user's cyclic lr (5e-6..3e-4, step 200) "
            "and ReduceLROnPlateau (val_loss, factor 0.2, patience 5, min 1e-5) are the 'cyclic' and "
            "'reduce_on_plateau' schedules (their defaults in schedule_options). Use crossed seeds "
            "to separate init-seed from data-order luck. Runs that stay at 50% are collapses to a "
            "constant output (loss ln 2, dead ReLUs) after the first Adam steps blow up the logits of "
            "the S*S*112-input Dense(3) layer; seeds split where lr * S^2 is ~25-100 (S 16: lr 0.1-0.3), "
            "which holds the user's lr 1e-3 at S 224 (50). image_size 224 is the report's size (GPU)."
        ),
        report="3",
        params=_defaults("pixel_color"),
        default_params={"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "shuffle": True},
        num_classes=2,
        loss="sparse_categorical_crossentropy",
        param_docs=_rules_doc(_RULES["pixel_color"]),
    ),
    "least_squares": PresetInfo(
        name="least_squares",
        description=(
            "Linear least squares with a known edge of stability, to check the analysis: Dense(1, "
            "no bias) on X = U diag(s) V^T, loss mse (mean over samples), so the Hessian is "
            "H = (2/n) X^T X with eigenvalues exactly lambda_max ... lambda_max/condition. "
            "Full-batch gradient descent (SGD, momentum 0, batch_size = n) is stable iff "
            "lr < 2 / lambda_max (2.0 at the defaults)."
        ),
        report=None,
        params=_defaults("least_squares"),
        default_params={"optimizer": "sgd", "learning_rate": 1.0, "momentum": 0.0, "batch_size": 64},
        num_classes=0,
        loss="mse",
        param_docs=_rules_doc(_RULES["least_squares"]),
    ),
}


def training_size(name: str, params: Mapping[str, Any]) -> int:
    """Examples in the training set of a preset with resolved ``params``."""
    if name == "least_squares":
        return int(params["n"])
    if "n_train" in params:
        return int(params["n_train"])
    return int(params["n_train_per_class"]) * PRESETS[name].num_classes


def _check(preset: str, key: str, value: Any, rule: ParamRule) -> Any:
    where = f"workload.params.{key} of preset {preset!r}"
    if rule.choices is not None:
        if value not in rule.choices:
            raise InvalidSpec(f"{where}: {value!r} is not one of {', '.join(map(str, rule.choices))}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSpec(f"{where}: {value!r} is not a number (default {rule.default!r})")
    if isinstance(rule.default, int):
        if int(value) != value:
            raise InvalidSpec(f"{where}: {value!r} must be an integer")
        value = int(value)
    else:
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidSpec(f"{where}: {value!r} is not finite")
    if (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high):
        raise InvalidSpec(f"{where}: {value!r} is outside [{rule.low}, {rule.high}]")
    return value


def resolve_preset_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's parameters: its defaults overridden by ``params``, validated.

    Raises ``NotFound`` for an unknown preset and ``InvalidSpec`` for an
    unknown key or a bad value; both messages list what is valid.
    """
    if name not in PRESETS:
        raise NotFound(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
    rules = _RULES[name]
    unknown = sorted(set(params) - set(rules))
    if unknown:
        raise InvalidSpec(
            f"preset {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(rules)}"
        )
    out = _defaults(name)
    for key, value in params.items():
        out[key] = _check(name, key, value, rules[key])
    if name == "least_squares" and out["n"] < out["d"]:
        raise InvalidSpec(
            f"workload.params of preset 'least_squares': n ({out['n']}) must be >= d ({out['d']}) "
            "so that X has d singular values"
        )
    return out
