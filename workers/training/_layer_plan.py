"""One planned layer of a weight-stacked model, and the checks every layer planner shares.

``LayerPlan`` is the static description of one Keras layer in a
``StackedPlan`` (``_stacked_model``): its kind, its flags, the shapes of its
trainable weights, and where it sits in the model's graph (the plan nodes it
reads; a chain's layer reads the one before it). ``Node`` and ``Context`` are
what a layer's forward function (``_stacked_graph.APPLY``) reads. The planners of each layer
family (``_stacked_model``, ``_stacked_norm``, ``_stacked_merge``,
``_stacked_embedding``, ...) build it with the helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from workers.training._stacked_errors import Unpackable

__all__ = ["MODEL_INPUT", "Context", "LayerPlan", "Node", "Unpackable"]

_SUPPORTED_ACTIVATIONS = frozenset(
    {
        "linear",
        "relu",
        "relu6",
        "tanh",
        "sigmoid",
        "hard_sigmoid",
        "softmax",
        "softplus",
        "softsign",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "leaky_relu",
        "exponential",
    }
)

# ``LayerPlan.inputs`` entry that stands for the model's input.
MODEL_INPUT = -1


@dataclass(frozen=True)
class LayerPlan:
    kind: str  # a key of _stacked_graph.APPLY: dense | lstm | gru | simple_rnn | dropout | ...
    name: str
    units: int = 0
    activation: str = "linear"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    return_sequences: bool = False
    reset_after: bool = True
    rate: float = 0.0
    weight_shapes: tuple[tuple[int, ...], ...] = ()
    # The plan nodes this layer reads, in call order (MODEL_INPUT or an earlier layer's
    # index); empty: the layer before it (a chain), or the model input for the first layer.
    inputs: tuple[int, ...] = ()
    # The layer receives Keras' mask (from an Embedding with mask_zero before it).
    masked: bool = False
    # The output's shape without the batch axis (empty when unknown: hand-made plans).
    out_shape: tuple[int, ...] = ()
    # Layer-specific static settings (epsilon, axis, merge op, ...), hashable.
    options: tuple[tuple[str, Any], ...] = ()
    config: Any = None  # conv, pooling, reshape, permute, batch_norm: their static options (hashable)
    n_state: int = 0  # the last n_state weights are non-trainable state (batch_norm's moving statistics)

    @property
    def n_weights(self) -> int:
        return len(self.weight_shapes)

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)


class Node(NamedTuple):
    """One plan node's value: ``h`` is ``(K, batch, ...)``, or ``(batch, ...)`` when ``shared``."""

    h: tf.Tensor
    pre: tf.Tensor  # the input of the layer's final activation (the logits of a softmax)
    shared: bool


@dataclass(frozen=True)
class Context:
    training: bool
    seed: tf.Tensor | None
    fused_rnn: bool
    index: int  # the layer's position in the plan (keys its dropout masks)
    # Non-trainable weights' new values by weight index (BatchNormalization's moving statistics,
    # in training), and the index of this layer's first weight.
    state_updates: dict[int, tf.Tensor] | None
    weight_offset: int
    # ``model input != 0`` as ``(K, batch, T)`` or, for a shared input, ``(1, batch, T)``;
    # None when no layer of the plan is masked.
    mask: tf.Tensor | None


def act_name(fn: Any) -> str:
    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str) or name not in _SUPPORTED_ACTIVATIONS:
        raise Unpackable(f"activation {name!r} is not supported by training packs")
    return name


def check_no_extras(layer: Any) -> None:
    for attr in (
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "gamma_regularizer",
        "beta_regularizer",
        "gamma_constraint",
        "beta_constraint",
        "embeddings_regularizer",
        "embeddings_constraint",
    ):
        if getattr(layer, attr, None) is not None:
            raise Unpackable(f"layer {layer.name!r} has a {attr.replace('_', ' ')}")
    if not layer.trainable and layer.weights:
        raise Unpackable(f"layer {layer.name!r} is frozen (trainable=False)")


def weights_of(layer: Any) -> list[Any]:
    if layer.non_trainable_weights:
        raise Unpackable(f"layer {layer.name!r} has non-trainable weights")
    return list(layer.trainable_weights)


def weight_shapes_of(layer: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(d) for d in w.shape) for w in weights_of(layer))
