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

``--pack K`` also trains a small CNN (16x16x3 -> Conv2D(8, 3, same, no bias) ->
BatchNormalization -> ReLU -> MaxPooling2D -> Conv2D(8, 3) ->
GlobalAveragePooling2D -> Dense(3), 448 examples, batch 32, Adam) as one pack
of K replicas per formulation, against ``SingleTrainer`` (one replica at a
time, the packs' fallback): replica-epochs/s in steady state (steps and
evaluation) and all in.

Usage: python benchmarks/bench_conv_formulations.py [--ks 1,4,16,32] [--batch 32] [--xla] [--pack 32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import workers.training._stacked_conv as stacked_conv
from workers.training._stacked_conv import conv
from workers.training._stacked_model import LayerPlan, plan_model
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer
from workers.training.single import SingleTrainer
from workers.workloads.base import Dataset

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

    def one_step(x: tf.Tensor, ws: list[list[tf.Tensor]]) -> list[list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(ws)
            h = x
            for layer, w in zip(layers, ws, strict=True):
                h = tf.nn.relu(conv(h, w, layer, shared=False, formulation=formulation))
            loss = tf.reduce_mean(tf.square(h))
        grads: list[list[tf.Tensor]] = tape.gradient(loss, ws)
        return grads

    step = tf.function(one_step, jit_compile=jit)
    step(x, weights)  # trace and compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = step(x, weights)
        _ = out[0][0].numpy()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


class SmallCNN:
    name = "small_cnn"
    loss = "sparse_categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(512, 16, 16, 3)).astype(np.float32)
        y = rng.integers(0, 3, 512).astype(np.int32)
        return Dataset(x[:448], y[:448], x[448:], y[448:])

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                L.Conv2D(8, 3, padding="same", use_bias=False),
                L.BatchNormalization(),
                L.Activation("relu"),
                L.MaxPooling2D(),
                L.Conv2D(8, 3, activation="relu"),
                L.GlobalAveragePooling2D(),
                L.Dense(3, activation="softmax"),
            ]
        )


def pack_rates(k: int, epochs: int) -> None:
    """SmallCNN: one pack of k replicas per formulation, and 4 replicas one at a time."""
    specs = [ReplicaSpec(i, {"learning_rate": 10 ** (-3 + i / k)}, i, 100 + i) for i in range(k)]
    t = time.perf_counter()
    SingleTrainer().train(SmallCNN(), specs[:4], epochs, NullObserver())
    print(f"single (one at a time): {4 * epochs / (time.perf_counter() - t):.1f} replica-epochs/s all in")
    chosen = stacked_conv.conv_formulation
    try:
        for how in ("grouped", "matmul"):
            stacked_conv.conv_formulation = lambda *, xla, how=how: how  # type: ignore[misc]
            trainer = PackTrainer()
            t = time.perf_counter()
            trainer.train(SmallCNN(), specs, epochs, NullObserver())
            total, st = time.perf_counter() - t, trainer.stats
            print(
                f"pack K={k} {how}: {k * epochs / (st.step_s + st.eval_s):.1f} replica-epochs/s steady, "
                f"{k * epochs / total:.1f} all in (compile {st.compile_s:.1f} s, steps {st.step_s:.1f} s, "
                f"evaluation {st.eval_s:.1f} s)",
                flush=True,
            )
    finally:
        stacked_conv.conv_formulation = chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="1,4,16,32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--xla", action="store_true", help="also time under XLA (jit_compile=True)")
    ap.add_argument("--pack", type=int, default=0, help="also train SmallCNN in a pack of this many replicas")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the --pack runs")
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
    if args.pack:
        pack_rates(args.pack, args.epochs)


if __name__ == "__main__":
    main()
