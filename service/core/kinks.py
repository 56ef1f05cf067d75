"""Where a model's gradient jumps: piecewise-linear activations and max-type layers.

Why it matters: ``record_sharpness.products: difference`` computes a
Hessian-vector product as ``(g(w + e v) - g(w - e v)) / 2e``. Where an example's
pre-activation crosses a ReLU's kink (or a max pooling's winner changes)
between ``w - e v`` and ``w + e v``, the gradient jumps, and the jump divided by a
small ``e`` is no curvature: a 2 x 8 ReLU MLP read 47.5 for an exact 0.97 (forward
differences; docs/sharpness.md). The double backward of ``products: exact``
differentiates the almost-everywhere Hessian and has no such term. So a sweep
that asks for difference products on such a model is refused at submission,
naming the part.

Read from the model's Keras JSON (uploads) or a table (presets), without
TensorFlow: the API process never imports it.
"""

from __future__ import annotations

from typing import Any

# Activations whose derivative jumps somewhere (Keras names).
KINKED_ACTIVATIONS = frozenset(
    {"relu", "relu6", "leaky_relu", "selu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh"}
    | {"hard_shrink", "soft_shrink", "threshold"}
)
# Layers whose output switches between inputs or pieces.
KINKED_LAYERS = frozenset(
    {
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ThresholdedReLU",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "Maximum",
        "Minimum",
    }
)
# The presets' models (workers/workloads/presets), checked against the built models by a test.
PRESET_KINKS: dict[str, str | None] = {
    "sensor_lstm": None,
    "cos_arccos": None,
    "sequence_rnn": None,
    "pixel_color": "Dense(activation='relu')",
    "least_squares": None,
}


def kinked_part(config: Any) -> str | None:
    """The first layer of a Keras model config whose gradient jumps, described; None if none."""
    if isinstance(config, list):
        for item in config:
            found = kinked_part(item)
            if found is not None:
                return found
        return None
    if not isinstance(config, dict):
        return None
    cls = config.get("class_name")
    inner = config.get("config")
    if isinstance(cls, str) and cls in KINKED_LAYERS:
        return cls
    if isinstance(cls, str) and isinstance(inner, dict):
        for key in ("activation", "recurrent_activation"):
            act = inner.get(key)
            if isinstance(act, dict):  # a serialized activation: {"class_name": ..., "config": ...}
                act = act.get("config", {}).get("name") if isinstance(act.get("config"), dict) else None
            if isinstance(act, str) and act in KINKED_ACTIVATIONS:
                return f"{cls}({key}={act!r})"
    for value in config.values():
        found = kinked_part(value)
        if found is not None:
            return found
    return None
