"""PackTrainer: the same training as each replica alone, on tiny real Keras models.

The reference is ``SingleTrainer`` (plain Keras model + Keras optimizer, one
replica at a time). Packs here hold 4 replicas with Adam and SGD so that most
tests share one compiled function.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any

import keras
import numpy as np
import pytest

from workers.training.packs import PackTrainer, can_pack, choose_pack_size, pack_bucket
from workers.training.single import SingleTrainer
from workers.training.types import EpochRecord, NullObserver, ReplicaResult, ReplicaSpec
from workers.workloads.base import Dataset

EPOCHS = 4


class TinyLSTM:
    """sensor_lstm in miniature: LSTM -> Dense(softmax), one-hot labels, validation split."""

    name = "tiny_lstm"
    loss = "categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, 30)
        t = np.linspace(0, 1, 10)[None, :, None]
        x = (np.sin((labels[:, None, None] + 1) * 3 * t) + 0.3 * rng.normal(size=(30, 10, 1))).astype(
            np.float32
        )
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:22], y[:22], x[22:], y[22:])

    def build_model(self) -> Any:
        return keras.Sequential(
            [keras.Input((10, 1)), keras.layers.LSTM(6), keras.layers.Dense(3, activation="softmax")]
        )


class TinyLongLSTM(TinyLSTM):
    """Sequences longer than MAX_UNROLL: tf.scan training, evaluation in a while loop."""

    name = "tiny_long_lstm"

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 3, 24)
        t = np.linspace(0, 1, 40)[None, :, None]
        x = (np.sin((labels[:, None, None] + 1) * 3 * t) + 0.3 * rng.normal(size=(24, 40, 1))).astype(
            np.float32
        )
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:16], y[:16], x[16:], y[16:])

    def build_model(self) -> Any:
        return keras.Sequential(
            [keras.Input((40, 1)), keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax")]
        )


class TinyDense:
    """A Dense classifier with Dropout and Flatten (pixel_color's layer types), integer labels."""

    name = "tiny_dense"
    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def __init__(self, dropout: float = 0.0) -> None:
        self.dropout = dropout

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(40, 3, 2)).astype(np.float32)
        y = (x[:, 0, 0] > 0).astype(np.int32)
        return Dataset(x, y)

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((3, 2)),
                L.Dense(8, activation="relu"),
                L.Dropout(self.dropout),
                L.Flatten(),
                L.Dense(2, activation="softmax"),
            ]
        )


class Conv:
    name = "conv"
    loss = "mse"
    num_classes = 0
    default_params: dict[str, Any] = {"optimizer": "sgd", "batch_size": 4}

    def dataset(self) -> Dataset:
        x = np.random.default_rng(2).normal(size=(8, 5, 1)).astype(np.float32)
        return Dataset(x, x[:, :1, 0])

    def build_model(self) -> Any:
        return keras.Sequential([keras.Input((5, 1)), keras.layers.Conv1D(1, 5), keras.layers.Flatten()])


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[list[tuple[Hashable, EpochRecord]]] = []
        self.stop_after = stop_after

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        self.calls.append(list(records))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.calls) > self.stop_after


TARGET = ReplicaSpec("target", {"optimizer": "adam", "learning_rate": 3e-3, "clipnorm": 1.0}, 11, 12)
OTHERS = [
    ReplicaSpec(
        "sgd", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, 21, 22
    ),
    ReplicaSpec(
        "adam-b1", {"optimizer": "adam", "learning_rate": 1e-2, "beta_1": 0.5, "schedule": "cosine"}, 31, 32
    ),
]
BAD = ReplicaSpec("bad", {"optimizer": "sgd", "learning_rate": 1e38}, 41, 42)  # overflows float32


def _rel(a: float | None, b: float | None) -> float:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return 0.0
    return abs(a - b) / max(abs(a), 1e-6)


def _max_rel(single: ReplicaResult, packed: ReplicaResult) -> float:
    assert len(single.epochs) == len(packed.epochs)
    worst = 0.0
    for s, p in zip(single.epochs, packed.epochs, strict=True):
        for f in ("loss", "accuracy", "running_loss", "val_loss", "grad_norm", "learning_rate"):
            worst = max(worst, _rel(getattr(s, f), getattr(p, f)))
    return worst


@pytest.fixture(scope="module")
def lstm() -> TinyLSTM:
    return TinyLSTM()


@pytest.fixture(scope="module")
def single_target(lstm: TinyLSTM) -> ReplicaResult:
    return SingleTrainer().train(lstm, [TARGET], EPOCHS, NullObserver())[0]


def test_replica_in_pack_equals_replica_alone(lstm: TinyLSTM, single_target: ReplicaResult) -> None:
    obs = Recorder()
    results = PackTrainer().train(lstm, [OTHERS[0], TARGET, OTHERS[1]], EPOCHS, obs)
    assert [r.key for r in results] == ["sgd", "target", "adam-b1"]
    assert all(r.status == "completed" for r in results)
    packed = results[1]
    assert [e.epoch for e in packed.epochs] == list(range(EPOCHS + 1))
    # float32 rounding: measured ~1e-7 here; losses, accuracy, val, grad norm and lr.
    assert _max_rel(single_target, packed) < 1e-4
    # One bulk observer call per epoch (epoch 0 included) with every replica.
    assert len(obs.calls) == EPOCHS + 1
    assert all(len(c) == 3 for c in obs.calls)


def test_long_sequence_replica_in_pack_equals_replica_alone() -> None:
    wl = TinyLongLSTM()
    single = SingleTrainer().train(wl, [TARGET], 2, NullObserver())[0]
    packed = PackTrainer().train(wl, [OTHERS[0], TARGET], 2, NullObserver())[1]
    assert packed.status == "completed"
    assert _max_rel(single, packed) < 1e-4


def test_one_compiled_epoch_serves_every_batch_size_and_pack_size(lstm: TinyLSTM) -> None:
    """Without XLA the batch size and the number of replicas are inputs: no recompilation.

    22 examples at batch 5 is four full batches and a partial one of 2, run through the
    step graph compiled for batch 8 and 3 replicas, in packs of 2 and of 5 (unpadded);
    the replicas still train exactly as alone.
    """
    with_batch = [ReplicaSpec(r.key, {**r.params, "batch_size": 5}, r.init_seed, r.data_seed) for r in OTHERS]
    target = ReplicaSpec("target", {**TARGET.params, "batch_size": 5}, TARGET.init_seed, TARGET.data_seed)
    warm = PackTrainer(jit_compile=False)
    warm.train(lstm, [OTHERS[0], TARGET, OTHERS[1]], 1, NullObserver())  # batch 8, compiled here or before
    trainer = PackTrainer(jit_compile=False)
    pair = trainer.train(lstm, [with_batch[0], target], EPOCHS, NullObserver())
    five = [ReplicaSpec(("x", i), with_batch[1].params, 50 + i, 60 + i) for i in range(3)]
    five_results = trainer.train(lstm, [*five, with_batch[0], target], EPOCHS, NullObserver())
    assert trainer.stats.compiles == 0
    alone = SingleTrainer().train(lstm, [target], EPOCHS, NullObserver())[0]
    assert _max_rel(alone, pair[1]) < 1e-4
    assert _max_rel(alone, five_results[4]) < 1e-4


def test_nonfinite_replica_stops_alone(lstm: TinyLSTM, single_target: ReplicaResult) -> None:
    results = PackTrainer(record_steps=True).train(lstm, [BAD, TARGET, OTHERS[0]], EPOCHS, NullObserver())
    bad, target, other = results
    assert bad.status == "nonfinite"
    assert not np.isfinite(bad.epochs[-1].loss)
    assert len(bad.epochs) < EPOCHS + 1
    assert not np.isfinite(bad.step_losses[-1][1])
    assert target.status == other.status == "completed"
    assert _max_rel(single_target, target) < 1e-4
    assert target.step_losses[0][0] == 0


def test_cancel_between_epochs(lstm: TinyLSTM) -> None:
    obs = Recorder(stop_after=2)  # epochs 0, 1 and 2 recorded, then stop
    results = PackTrainer().train(lstm, [TARGET, OTHERS[0]], EPOCHS, obs)
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert [len(r.epochs) for r in results] == [3, 3]


def test_mixed_batch_sizes_are_rejected(lstm: TinyLSTM) -> None:
    other = ReplicaSpec("b4", {"batch_size": 4}, 1, 1)
    with pytest.raises(ValueError, match="batch size"):
        PackTrainer().train(lstm, [TARGET, other], 1, NullObserver())


def test_dropout_dense_pack_trains_and_high_lr_matches_in_distribution() -> None:
    """At a high lr curves are chaotic: compare the class mix over seeds, not curves."""
    w = TinyDense(dropout=0.0)
    seeds = [
        ReplicaSpec(s, {"optimizer": "sgd", "learning_rate": 3.0, "momentum": 0.9}, 100 + s, 200 + s)
        for s in range(8)
    ]
    single = SingleTrainer().train(w, seeds, EPOCHS, NullObserver())
    packed = PackTrainer().train(w, seeds, EPOCHS, NullObserver())

    def failed(r: ReplicaResult) -> bool:
        return r.status == "nonfinite" or r.epochs[-1].loss >= r.epochs[0].loss

    n_single = sum(failed(r) for r in single)
    n_packed = sum(failed(r) for r in packed)
    assert abs(n_single - n_packed) <= 2
    # Dropout is reproduced in distribution only: the pack trains and learns.
    wd = TinyDense(dropout=0.4)
    res = PackTrainer().train(wd, [ReplicaSpec(0, {"learning_rate": 0.01}, 1, 2)], 6, NullObserver())
    assert res[0].status == "completed"
    assert res[0].epochs[-1].loss < res[0].epochs[0].loss


def test_unpackable_workload_falls_back_to_single(caplog: pytest.LogCaptureFixture) -> None:
    ok, reason = can_pack(Conv())
    assert not ok and "Conv1D" in reason
    with caplog.at_level(logging.WARNING):
        results = PackTrainer().train(Conv(), [ReplicaSpec(0, {}, 1, 2)], 1, NullObserver())
    assert results[0].status == "completed"
    assert "one at a time" in caplog.text


def test_xla_on_cpu_for_small_batches_only(lstm: TinyLSTM, caplog: pytest.LogCaptureFixture) -> None:
    """Default on CPU: XLA for the epoch at batch <= XLA_CPU_MAX_BATCH in smaller packs, never for eval."""
    from workers.training.packs import XLA_CPU_MAX_BATCH, XLA_CPU_PACK_CAP

    auto = PackTrainer(max_replicas=64)
    assert auto.uses_xla(XLA_CPU_MAX_BATCH) == (True, False)
    assert auto.pack_cap(XLA_CPU_MAX_BATCH) == XLA_CPU_PACK_CAP
    assert auto.uses_xla(8) == (False, False) and auto.pack_cap(8) == 64
    assert PackTrainer(max_replicas=4).pack_cap(1) == 4  # the user's cap still bounds it
    forced = PackTrainer(jit_compile=False)
    assert forced.uses_xla(2) == (False, False) and forced.pack_cap(2) == 64
    assert PackTrainer(jit_compile=True).uses_xla(32) == (True, True)
    # The choice is part of the compiled-function key: forcing XLA off compiles its own function.
    specs = [
        ReplicaSpec(r.key, {**r.params, "batch_size": XLA_CPU_MAX_BATCH}, r.init_seed, r.data_seed)
        for r in (OTHERS[0], TARGET)
    ]
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        a = PackTrainer().train(lstm, specs, 1, NullObserver())
        b = PackTrainer(jit_compile=False).train(lstm, specs, 1, NullObserver())
    assert "xla=1" in caplog.text and "xla=0" in caplog.text
    assert _max_rel(a[1], b[1]) < 1e-4


def test_pack_sizes(lstm: TinyLSTM) -> None:
    assert can_pack(lstm) == (True, "")
    assert [pack_bucket(k, 64) for k in (1, 3, 8, 9, 40, 64)] == [1, 4, 8, 16, 64, 64]
    assert pack_bucket(40, 48) == 48
    assert choose_pack_size(lstm, 100, "cpu", cap=32) == 32
    assert choose_pack_size(lstm, 5, "cpu", cap=32) == 5
    assert choose_pack_size(Conv(), 100, "cpu", cap=32) == 1


def test_pack_size_is_chosen_under_the_cap_and_logged(
    lstm: TinyLSTM, caplog: pytest.LogCaptureFixture
) -> None:
    obs = Recorder()
    with caplog.at_level(logging.INFO, logger="workers.training.packs"):
        results = PackTrainer(max_replicas=2).train(lstm, [TARGET, *OTHERS], 1, obs)
    assert [r.status for r in results] == ["completed"] * 3
    assert "packs of up to 2 replicas" in caplog.text
    # Two packs (2 + 1 replicas), each with an epoch-0 and an epoch-1 bulk call.
    assert [len(c) for c in obs.calls] == [2, 2, 1, 1]


def test_make_trainer_packs_when_it_can_and_says_why_not(caplog: pytest.LogCaptureFixture) -> None:
    from workers.training.select import make_trainer

    packed = make_trainer(TinyLSTM(), schedule_options={}, record_steps=False, device="cpu", max_replicas=8)
    assert isinstance(packed, PackTrainer) and packed.max_replicas == 8
    with caplog.at_level(logging.WARNING):
        single = make_trainer(Conv(), schedule_options={}, record_steps=False, device="cpu", max_replicas=8)
    assert isinstance(single, SingleTrainer)
    assert "cannot be packed" in caplog.text and "one replica at a time" in caplog.text


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("f", [1, 2])
def test_unrolled_lstm_matches_scan_and_autodiff(return_sequences: bool, shared: bool, f: int) -> None:
    import tensorflow as tf

    from workers.training._lstm_unrolled import lstm_forward_loop, lstm_forward_only, lstm_unrolled
    from workers.training._stacked_model import LayerPlan, _lstm_scan

    rng = np.random.default_rng(0)
    k, b, t, u = 3, 4, 7, 5
    x = tf.constant(rng.normal(size=(b, t, f) if shared else (k, b, t, f)).astype(np.float32))
    w = [
        tf.constant(0.5 * rng.normal(size=s).astype(np.float32))
        for s in [(k, f, 4 * u), (k, u, 4 * u), (k, 4 * u)]
    ]
    plan = LayerPlan("lstm", "l", units=u, activation="tanh", return_sequences=return_sequences)

    def outputs_and_grads(fn: Any) -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            tape.watch(w)
            tape.watch(x)
            y = fn()
            loss = tf.reduce_sum(tf.sin(1.3 * y))
        return [t_.numpy() for t_ in [y, *tape.gradient(loss, [x, *w])]]

    ours = outputs_and_grads(
        lambda: lstm_unrolled(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    )
    ref = outputs_and_grads(lambda: _lstm_scan(x, w, plan, shared))
    for a, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, r, atol=1e-5)
    fwd = lstm_forward_only(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    np.testing.assert_allclose(fwd.numpy(), ref[0], atol=1e-6)
    # Evaluation of long sequences: input projected inside a while loop (graph mode, as compiled).
    loop = tf.function(
        lambda: lstm_forward_loop(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    )()
    np.testing.assert_allclose(loop.numpy(), ref[0], atol=1e-6)
    no_bias = lstm_forward_loop(x, w[0], w[1], None, return_sequences=return_sequences, shared=shared)
    ref_nb = _lstm_scan(
        x,
        w[:2],
        LayerPlan("lstm", "l", units=u, activation="tanh", use_bias=False, return_sequences=return_sequences),
        shared,
    )
    np.testing.assert_allclose(no_bias.numpy(), ref_nb.numpy(), atol=1e-6)


def test_long_sequence_evaluation_runs_in_one_chunk() -> None:
    """sensor_lstm's shape (T=100 > MAX_UNROLL): the full-set evaluation is one call at K=64."""
    from workers.training._stacked_model import LayerPlan, StackedPlan
    from workers.training.packs import _EVAL_BUDGET_FLOATS, _eval_floats_per_sample

    plan = StackedPlan(
        (
            LayerPlan("lstm", "l", units=32, activation="tanh", weight_shapes=((1, 128), (32, 128), (128,))),
            LayerPlan("dense", "d", units=6, activation="softmax", weight_shapes=((32, 6), (6,))),
        ),
        (100, 1),
        6,
    )
    for fused in (True, False):  # BlockLSTM (CPU) or the loop that projects inside (XLA)
        assert _EVAL_BUDGET_FLOATS // _eval_floats_per_sample(plan, 64, fused=fused) >= 98


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_fused_lstm_matches_scan_and_autodiff(return_sequences: bool, shared: bool, use_bias: bool) -> None:
    """TensorFlow's BlockLSTM per replica (gates permuted to its i, c, f, o order) is Keras' cell.

    Outputs and the gradients of its registered backward against tf.scan + autodiff, in a
    compiled function with a dynamic batch axis, as the pack trainer calls it.
    """
    import tensorflow as tf

    from workers.training._lstm_fused import lstm_fused
    from workers.training._stacked_model import LayerPlan, _lstm_scan

    rng = np.random.default_rng(1)
    k, b, t, f, u = 3, 4, 40, 2, 5
    x = tf.constant(rng.normal(size=(b, t, f) if shared else (k, b, t, f)).astype(np.float32))
    shapes = [(k, f, 4 * u), (k, u, 4 * u)] + ([(k, 4 * u)] if use_bias else [])
    w = [tf.constant(0.5 * rng.normal(size=s).astype(np.float32)) for s in shapes]
    plan = LayerPlan(
        "lstm", "l", units=u, activation="tanh", use_bias=use_bias, return_sequences=return_sequences
    )
    x_spec = tf.TensorSpec([None, *x.shape[1:]] if shared else [k, None, *x.shape[2:]], tf.float32)

    def outputs_and_grads(fn: Any) -> list[np.ndarray]:
        @tf.function(input_signature=[x_spec, [tf.TensorSpec(s, tf.float32) for s in shapes]])
        def run(x: tf.Tensor, w: list[tf.Tensor]) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(w)
                tape.watch(x)
                y = fn(x, w)
                loss = tf.reduce_sum(tf.sin(1.3 * y))
            return [y, *tape.gradient(loss, [x, *w])]

        return [t_.numpy() for t_ in run(x, w)]

    ours = outputs_and_grads(
        lambda x, w: lstm_fused(
            x, w[0], w[1], w[2] if use_bias else None, return_sequences=return_sequences, shared=shared
        )
    )
    ref = outputs_and_grads(lambda x, w: _lstm_scan(x, w, plan, shared))
    assert ours[0].shape == ((k, b, t, u) if return_sequences else (k, b, u))
    for a, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, r, atol=2e-5)
