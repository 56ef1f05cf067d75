"""Keras' Conv1D and Conv2D over K stacked replicas, in two formulations.

``grouped``: the replicas' channels side by side, one grouped convolution
(HFTA, MLSys 2021): ``(K, B, *S, C) -> (B, *S, K*C)``, the kernels
``(K, *ks, C, F) -> (*ks, C, K*F)``; ``tf.nn.convolution`` infers K groups from
the channel counts (a shared input, the first layer, is a plain convolution
with K*F filters). ``matmul``: im2col by strided slices, then one batched
matmul ``(K, B*So, P) @ (K, P, F)`` with ``P = prod(ks) * C``.

``conv_formulation`` picks one by device and compiler. On the 2-core CPU
(``benchmarks/bench_conv_formulations.py``, ms per training step at batch 32,
grouped vs matmul): without XLA the grouped convolution (oneDNN's grouped
kernel) wins where convolutions cost anything, pixel 16x16x3 -> 8 -> 8 filters
K=4/16/32: 3.6/10.0/24.0 vs 22.2/57.6/176.2 ms, and the tiny ones are even
(digits 8x8 K=16: 1.5 vs 1.5, seq 64x4 K=16: 2.0 vs 1.8); under XLA on CPU the
grouped convolution's gradient collapses (pixel K=16: 1093 vs 30.5 ms, digits
K=16: 33.1 vs 0.7), so XLA on CPU uses the matmul. On a GPU the grouped
convolution is cuDNN's grouped kernel (HFTA's choice); not measured here.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._stacked_errors import Unpackable, static_output_shape

if TYPE_CHECKING:
    from workers.training._stacked_model import LayerPlan


@dataclass(frozen=True)
class ConvSpec:
    """A convolution's static options (channels_last, groups=1)."""

    rank: int  # spatial axes: 1 (Conv1D) or 2 (Conv2D)
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str  # valid | same | causal (Conv1D)
    dilation: tuple[int, ...]


def plan_conv(layer: Any) -> dict[str, Any] | None:
    """``LayerPlan`` fields of a Conv1D/Conv2D layer; None for other layers."""
    L = keras.layers
    if type(layer) not in (L.Conv1D, L.Conv2D):
        if isinstance(layer, keras.layers.Layer) and type(layer).__name__.startswith(
            ("Conv3D", "SeparableConv", "DepthwiseConv", "Conv1DTranspose", "Conv2DTranspose")
        ):
            raise Unpackable(
                f"layer {layer.name!r} ({type(layer).__name__}) is not supported by training packs"
            )
        return None
    what = f"{type(layer).__name__} {layer.name!r}"
    if layer.data_format != "channels_last":
        raise Unpackable(f"{what} uses data_format={layer.data_format} (packs need channels_last)")
    if layer.groups != 1:
        raise Unpackable(f"{what} is itself grouped (groups={layer.groups}; packs need groups=1)")
    if layer.padding not in ("valid", "same", "causal"):
        raise Unpackable(f"{what} has padding {layer.padding!r}")
    if getattr(layer, "lora_enabled", False):
        raise Unpackable(f"{what} has LoRA enabled")
    spec = ConvSpec(
        rank=int(layer.rank),
        kernel=tuple(int(k) for k in layer.kernel_size),
        strides=tuple(int(s) for s in layer.strides),
        padding=str(layer.padding),
        dilation=tuple(int(d) for d in layer.dilation_rate),
    )
    return {
        "kind": "conv",
        "units": int(layer.filters),
        "use_bias": bool(layer.use_bias),
        "config": spec,
        "out_shape": static_output_shape(layer),
    }


@functools.cache
def _has_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def conv_formulation(*, xla: bool) -> str:
    """``grouped`` on a GPU and on CPU without XLA, ``matmul`` under XLA on CPU (module doc)."""
    if _has_gpu() or not xla:
        return "grouped"
    return "matmul"


def conv(
    h: tf.Tensor,
    w: Sequence[tf.Tensor],
    layer: LayerPlan,
    shared: bool,
    *,
    xla: bool = False,
    formulation: str | None = None,
) -> tf.Tensor:
    """The pre-activation output ``(K, B, *So, F)`` of a stacked convolution.

    ``xla``: whether the caller compiles under XLA (it picks the formulation,
    unless ``formulation`` names one).
    """
    spec = layer.config
    assert isinstance(spec, ConvSpec)
    kernel = w[0]  # (K, *ks, C, F)
    h, padding = _pad(h, spec, lead=1 if shared else 2)
    how = formulation or conv_formulation(xla=xla)
    out = (
        _grouped(h, kernel, spec, padding, shared)
        if how == "grouped"
        else _matmul(h, kernel, spec, padding, shared)
    )
    if layer.use_bias:
        b = w[1]  # (K, F)
        out = out + tf.reshape(b, tf.concat([tf.shape(b)[:1], [1] * (spec.rank + 1), tf.shape(b)[1:]], 0))
    # Static spatial and channel sizes (Flatten and the next layers read them).
    batch = h.shape[0] if shared else h.shape[1]
    out.set_shape(kernel.shape[:1].concatenate([batch, *layer.out_shape]))
    return out


def _pad(h: tf.Tensor, spec: ConvSpec, lead: int) -> tuple[tf.Tensor, str]:
    """Causal padding as Keras' Conv1D applies it (zeros before the sequence), then VALID."""
    if spec.padding != "causal":
        return h, spec.padding.upper()
    left = spec.dilation[0] * (spec.kernel[0] - 1)
    return tf.pad(h, [[0, 0]] * lead + [[left, 0], [0, 0]]), "VALID"


def _split_k(out: tf.Tensor, k: tf.Tensor, rank: int) -> tf.Tensor:
    """``(B, *So, K*F) -> (K, B, *So, F)``."""
    shape = tf.shape(out)
    out = tf.reshape(out, tf.concat([shape[:-1], [k, -1]], 0))
    perm = [rank + 1] + list(range(rank + 1)) + [rank + 2]
    return tf.transpose(out, perm)


def _grouped(h: tf.Tensor, kernel: tf.Tensor, spec: ConvSpec, padding: str, shared: bool) -> tf.Tensor:
    r = spec.rank
    k = tf.shape(kernel)[0]
    # (K, *ks, C, F) -> (*ks, C, K, F) -> (*ks, C, K*F): output channel k*F + f is replica k's filter f.
    kern = tf.transpose(kernel, list(range(1, r + 2)) + [0, r + 2])
    kern = tf.reshape(kern, tf.concat([tf.shape(kern)[: r + 1], [-1]], 0))
    if not shared:
        # (K, B, *S, C) -> (B, *S, K, C) -> (B, *S, K*C): group k sees replica k's channels.
        x = tf.transpose(h, list(range(1, r + 2)) + [0, r + 2])
        x = tf.reshape(x, tf.concat([tf.shape(x)[: r + 1], [-1]], 0))
        x.set_shape(h.shape[1 : r + 2].concatenate([None]))
    else:
        x = h
    out = tf.nn.convolution(
        x, kern, strides=list(spec.strides), padding=padding, dilations=list(spec.dilation)
    )
    return _split_k(out, k, r)


def _out_size(size: int, k: int, s: int, d: int, padding: str) -> tuple[int, int, int]:
    """Output length and (before, after) zero padding of one spatial axis, as TF computes them."""
    span = d * (k - 1) + 1
    if padding == "VALID":
        return (size - span) // s + 1, 0, 0
    out = math.ceil(size / s)
    total = max((out - 1) * s + span - size, 0)
    return out, total // 2, total - total // 2


def _patches(x: tf.Tensor, spec: ConvSpec, padding: str) -> tf.Tensor:
    """im2col: ``(N, *S, C) -> (N, *So, prod(ks) * C)``, kernel offsets row-major then channels."""
    r = spec.rank
    sizes = [int(d) for d in x.shape[1 : r + 1]]
    geo = [
        _out_size(n, k, s, d, padding)
        for n, k, s, d in zip(sizes, spec.kernel, spec.strides, spec.dilation, strict=True)
    ]
    if any(before or after for _, before, after in geo):
        x = tf.pad(x, [[0, 0]] + [[before, after] for _, before, after in geo] + [[0, 0]])
    cols = []
    for offset in itertools.product(*(range(k) for k in spec.kernel)):
        idx = [slice(None)]
        for o, (n_out, _, _), s, d in zip(offset, geo, spec.strides, spec.dilation, strict=True):
            idx.append(slice(o * d, o * d + (n_out - 1) * s + 1, s))
        cols.append(x[tuple(idx)])
    return cols[0] if len(cols) == 1 else tf.concat(cols, axis=-1)


def _matmul(h: tf.Tensor, kernel: tf.Tensor, spec: ConvSpec, padding: str, shared: bool) -> tf.Tensor:
    r = spec.rank
    p = int(np.prod(kernel.shape[1 : r + 2]))  # prod(ks) * C
    kern = tf.reshape(kernel, tf.stack([tf.shape(kernel)[0], p, tf.shape(kernel)[-1]]))  # (K, P, F)
    if shared:
        cols = _patches(h, spec, padding)  # (B, *So, P)
        flat = tf.reshape(cols, [-1, p])
        out = tf.einsum("mp,kpf->kmf", flat, kern)
        lead = tf.concat([tf.shape(kern)[:1], tf.shape(cols)[:-1]], 0)
    else:
        shape = tf.shape(h)
        x = tf.reshape(h, tf.concat([[-1], shape[2:]], 0))  # (K*B, *S, C)
        x.set_shape(tf.TensorShape([None]).concatenate(h.shape[2:]))
        cols = _patches(x, spec, padding)  # (K*B, *So, P)
        out = tf.matmul(tf.reshape(cols, tf.stack([shape[0], -1, p])), kern)  # (K, B*So, F)
        lead = tf.concat([shape[:2], tf.shape(cols)[1:-1]], 0)
    return tf.reshape(out, tf.concat([lead, tf.shape(kern)[-1:]], 0))
