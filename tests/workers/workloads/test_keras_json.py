"""A real dataset (scikit-learn's digits) end to end: npz + model JSON -> workload -> training."""

from __future__ import annotations

import io

import keras
import numpy as np
from sklearn.datasets import load_digits

from service.core.model_checks import inspect_keras_model
from service.core.uploads import inspect_npz
from tests.workers.training.pack_workloads import max_rel
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer, can_pack
from workers.training.single import SingleTrainer
from workers.workloads.keras_json import KerasJsonWorkload


def test_digits_end_to_end() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=x[:300], y_train=y[:300], x_val=x[300:400], y_val=y[300:400])
    npz = buf.getvalue()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model_json = model.to_json()

    summary = inspect_npz(npz)
    assert (summary.num_classes, summary.input_shape, summary.label_format) == (10, (64,), "integer")
    assert inspect_keras_model(model_json, summary, "sparse_categorical_crossentropy")["output_units"] == 10

    w = KerasJsonWorkload(
        model_json, npz, "sparse_categorical_crossentropy", default_params={"learning_rate": 0.01}
    )
    reps = [ReplicaSpec(s, {"batch_size": 32}, init_seed=s, data_seed=0) for s in (0, 0, 1)]
    a, b, c = SingleTrainer().train(w, reps, 4, NullObserver())
    assert a.status == "completed", a.traceback
    assert a.epochs == b.epochs and a.epochs[0].loss != c.epochs[0].loss
    assert a.epochs[0].loss > 2.0 and a.epochs[-1].loss < 1.0  # ln 10 = 2.3 at init; it learns
    assert a.epochs[-1].accuracy is not None and a.epochs[-1].accuracy > 0.7
    assert a.epochs[-1].val_accuracy is not None


def test_uploaded_functional_text_model_trains_as_a_pack() -> None:
    """A Functional model with Embedding(mask_zero), Bidirectional, LayerNormalization and Add,
    uploaded as JSON (safe mode), packs and trains like its lone runs."""
    rng = np.random.default_rng(3)
    x = rng.integers(1, 9, size=(40, 6)).astype(np.float32)
    for i, length in enumerate(rng.integers(2, 7, size=40)):
        x[i, length:] = 0
    y = (x[:, 0] > 4).astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=x[:32], y_train=y[:32], x_val=x[32:], y_val=y[32:])
    L = keras.layers
    tokens = keras.Input((6,))
    e = L.Embedding(9, 4, mask_zero=True)(tokens)
    h = L.LayerNormalization()(L.Bidirectional(L.LSTM(3, return_sequences=True))(e))
    h = L.GRU(4)(L.Add()([h, L.Dense(6)(h)]))
    model_json = keras.Model(tokens, L.Dense(2, activation="softmax")(h)).to_json()

    w = KerasJsonWorkload(model_json, buf.getvalue(), "sparse_categorical_crossentropy")
    assert w.model_info["layers"][1:3] == ["Embedding", "Bidirectional"]
    assert can_pack(w) == (True, "")
    reps = [
        ReplicaSpec(s, {"batch_size": 8, "learning_rate": 3e-3}, init_seed=s, data_seed=s) for s in (1, 2)
    ]
    packed = PackTrainer().train(w, reps, 2, NullObserver())
    lone = SingleTrainer().train(w, reps, 2, NullObserver())
    for p, s in zip(packed, lone, strict=True):
        assert p.status == s.status == "completed"
        assert max_rel(s, p) < 1e-4
