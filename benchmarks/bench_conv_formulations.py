"""Stacked convolutions: the grouped convolution against the batched matmul (im2col), per step.

One training step (forward, gradient of a mean-square loss, no optimizer) of a
pack of K replicas of a small CNN's convolutions, per formulation of
``workers.training._stacked_conv`` and per K, compiled with ``tf.function``
(``--xla`` also under XLA). Prints ms per step (median of ``--repeats``
timed calls after a warm-up) and the matmul/grouped ratio; the device choice
in ``conv_formulation`` is read from these figures.

Workloads: ``pixel`` (16x16x3 images, Conv2D(8, 3, same) -> Conv2D(8, 3),
report 3's recommended shape at pixel_color's size), ``digits`` (8x8x1,
Conv2D(16, 3)), ``seq`` (Conv1D(16, 5) over 64 steps of 4 features).

Usage: python benchmarks/bench_conv_formulations.py [--ks 1,4,16,32] [--batch 32] [--xla]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._stacked_conv import conv
from workers.training._stacked_model import LayerPlan, plan_model

WORKLOADS: dict[str, tuple[tuple[int, ...], list[Any]]] = {
    "pixel": ((16, 16, 3), [("2d", 8, 3, "same"), ("2d", 8, 3, "valid")]),
    "digits": ((8, 8, 1), [("2d", 16, 3, "valid")]),
    "seq": ((64, 4), [("1d", 16, 5, "valid")]),
}


def _plans(input_shape: tuple[int, ...], convs: list[Any]) -> list[LayerPlan]:
    layers: list[Any] = [keras.Input(input_shape)]
    for rank, filters, size, padding in convs:
        cls = keras.layers.Conv2D if rank == "2d" else keras.layers.Conv1D
        layers.append(cls(filters, size, padding=padding, activation="relu"))
    plan, _ = plan_model(keras.Sequential(layers))
    return list(plan.layers)


def time_step(name: str, k: int, batch: int, formulation: str, jit: bool, repeats: int) -> float:
    input_shape, convs = WORKLOADS[name]
    layers = _plans(input_shape, convs)
    rng = np.random.default_rng(0)
    weights = [
        [tf.constant(rng.normal(size=(k, *s), scale=0.1).astype(np.float32)) for s in layer.weight_shapes]
        for layer in layers
    ]
    x = tf.constant(rng.normal(size=(k, batch, *input_shape)).astype(np.float32))

    @tf.function(jit_compile=jit)
    def step(x: tf.Tensor, ws: list[list[tf.Tensor]]) -> list[list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(ws)
            h = x
            for layer, w in zip(layers, ws, strict=True):
                h = tf.nn.relu(conv(h, w, layer, shared=False, formulation=formulation))
            loss = tf.reduce_mean(tf.square(h))
        grads: list[list[tf.Tensor]] = tape.gradient(loss, ws)
        return grads

    step(x, weights)  # trace and compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = step(x, weights)
        _ = out[0][0].numpy()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="1,4,16,32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--xla", action="store_true", help="also time under XLA (jit_compile=True)")
    args = ap.parse_args()
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"device {device}, batch {args.batch}, ms per training step (median of {args.repeats})")
    print(f"{'workload':8} {'K':>3} {'xla':>3} {'grouped':>9} {'matmul':>9} {'matmul/grouped':>15}")
    for name in args.workloads.split(","):
        for jit in (False, True) if args.xla else (False,):
            for k in (int(v) for v in args.ks.split(",")):
                g = time_step(name, k, args.batch, "grouped", jit, args.repeats)
                m = time_step(name, k, args.batch, "matmul", jit, args.repeats)
                print(f"{name:8} {k:3d} {int(jit):3d} {g:9.2f} {m:9.2f} {m / g:15.2f}", flush=True)


if __name__ == "__main__":
    main()
