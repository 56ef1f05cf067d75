"""Keras' weightless shape layers over K stacked replicas: pooling, Reshape, Permute.

None of them mixes samples or replicas, so each runs Keras' own op on the
replica and batch axes merged (``(K, B, ...) -> (K*B, ...)``), or directly on
a shared input (the same for every replica, which stays shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from workers.training._stacked_errors import Unpackable, static_output_shape

if TYPE_CHECKING:
    from workers.training._stacked_model import LayerPlan

SHAPE_KINDS = frozenset({"max_pool", "avg_pool", "global_avg_pool", "global_max_pool", "reshape", "permute"})


@dataclass(frozen=True)
class PoolSpec:
    rank: int  # spatial axes: 1 or 2
    pool: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str  # VALID | SAME


def _channels_last(layer: Any) -> None:
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise Unpackable(f"layer {layer.name!r} uses data_format={fmt} (packs need channels_last)")


def plan_shape_layer(layer: Any) -> dict[str, Any] | None:
    """``LayerPlan`` fields of a pooling, Reshape or Permute layer; None for other layers."""
    L = keras.layers
    t = type(layer)
    out_shape = {"out_shape": static_output_shape(layer)} if t in _KINDS else {}
    if t in (L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D):
        _channels_last(layer)
        if layer.padding not in ("valid", "same"):
            raise Unpackable(f"pooling {layer.name!r} has padding {layer.padding!r}")
        spec = PoolSpec(
            rank=len(layer.pool_size),
            pool=tuple(int(p) for p in layer.pool_size),
            strides=tuple(int(s) for s in layer.strides),
            padding=str(layer.padding).upper(),
        )
        return {"kind": _KINDS[t], "config": spec, **out_shape}
    if t in (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D):
        _channels_last(layer)
        rank = 1 if t in (L.GlobalAveragePooling1D, L.GlobalMaxPooling1D) else 2
        return {"kind": _KINDS[t], "config": (rank, bool(layer.keepdims)), **out_shape}
    if t is L.Reshape:
        return {"kind": "reshape", "config": tuple(int(d) for d in layer.target_shape), **out_shape}
    if t is L.Permute:
        return {"kind": "permute", "config": tuple(int(d) for d in layer.dims), **out_shape}
    return None


_KINDS: dict[type, str] = {
    keras.layers.MaxPooling1D: "max_pool",
    keras.layers.MaxPooling2D: "max_pool",
    keras.layers.AveragePooling1D: "avg_pool",
    keras.layers.AveragePooling2D: "avg_pool",
    keras.layers.GlobalAveragePooling1D: "global_avg_pool",
    keras.layers.GlobalAveragePooling2D: "global_avg_pool",
    keras.layers.GlobalMaxPooling1D: "global_max_pool",
    keras.layers.GlobalMaxPooling2D: "global_max_pool",
    keras.layers.Reshape: "reshape",
    keras.layers.Permute: "permute",
}


def shape_layer(h: tf.Tensor, layer: LayerPlan, shared: bool) -> tf.Tensor:
    """What the Keras layer returns for each replica (shared inputs stay shared)."""
    lead = 1 if shared else 2
    batch_shape = h.shape[:lead]
    if layer.kind in ("max_pool", "avg_pool"):
        spec = layer.config
        assert isinstance(spec, PoolSpec)
        x = h if shared else tf.reshape(h, tf.concat([[-1], tf.shape(h)[2:]], 0))
        pool = tf.nn.max_pool if layer.kind == "max_pool" else tf.nn.avg_pool
        out = pool(x, list(spec.pool), list(spec.strides), spec.padding)
        if not shared:
            out = tf.reshape(out, tf.concat([tf.shape(h)[:2], tf.shape(out)[1:]], 0))
    elif layer.kind in ("global_avg_pool", "global_max_pool"):
        rank, keepdims = layer.config
        axes = list(range(lead, lead + rank))
        reduce = tf.reduce_mean if layer.kind == "global_avg_pool" else tf.reduce_max
        out = reduce(h, axis=axes, keepdims=keepdims)
    elif layer.kind == "reshape":
        out = tf.reshape(h, tf.concat([tf.shape(h)[:lead], list(layer.out_shape)], 0))
    elif layer.kind == "permute":
        out = tf.transpose(h, list(range(lead)) + [lead - 1 + d for d in layer.config])
    else:  # pragma: no cover - plan_shape_layer only produces the kinds above
        raise AssertionError(layer.kind)
    out.set_shape(batch_shape.concatenate(layer.out_shape))
    return out
