"""Embedding in a pack, with mask_zero honoured by the recurrent and pooling layers after it.

Keras' masked recurrent step keeps every state and repeats the previous
output; each replica of a pack of 3 must equal its lone Keras run, through
sequences padded with zeros on both sides, gradient included.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import pack_vs_lone_runs
from workers.training._stacked_model import Unpackable, plan_model
from workers.workloads.base import Dataset

L = keras.layers
VOCAB, STEPS = 9, 7


class TinyText:
    """Token sequences (0 = padding, on the right and on the left) -> a recurrent stack -> softmax."""

    name = "tiny_text"
    loss = "categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def __init__(self, body: str, mask_zero: bool = True) -> None:
        self.body = body
        self.mask_zero = mask_zero
        self.name = f"tiny_text_{body}"

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(11)
        n = 36
        x = rng.integers(1, VOCAB, size=(n, STEPS)).astype(np.float32)
        lengths = rng.integers(2, STEPS + 1, size=n)
        for i, length in enumerate(lengths):
            x[i, length:] = 0  # right padding
        x[::4, 0] = 0  # and some left padding: masked steps before the first real one
        labels = (x[:, 1] % 3).astype(np.int64)
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:28], y[:28], x[28:], y[28:])

    def build_model(self) -> Any:
        x = keras.Input((STEPS,))
        e = L.Embedding(VOCAB, 4, mask_zero=self.mask_zero)(x)
        if self.body == "lstm_gru":
            h = L.GRU(4)(L.LSTM(5, return_sequences=True)(e))
        elif self.body == "rnn_pool":
            h = L.GlobalAveragePooling1D()(L.SimpleRNN(4, return_sequences=True)(e))
        elif self.body == "residual":  # the mask through Dense and Add into an LSTM
            h = L.LSTM(3)(L.Add()([e, L.Dense(4, activation="tanh")(e)]))
        else:  # "flatten": no recurrent layer, the mask is dropped
            h = L.Dense(5, activation="relu")(L.Flatten()(e))
        return keras.Model(x, L.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize(
    "workload",
    [TinyText("lstm_gru"), TinyText("rnn_pool"), TinyText("residual"), TinyText("lstm_gru", mask_zero=False)],
    ids=["lstm-gru", "simple-rnn-pool", "residual", "unmasked"],
)
def test_embedding_replicas_equal_lone_runs(workload: TinyText) -> None:
    assert pack_vs_lone_runs(workload) < 1e-4


def test_mask_reaches_only_the_layers_that_receive_it() -> None:
    plan, _ = plan_model(TinyText("residual").build_model())
    assert [(p.kind, p.masked) for p in plan.layers] == [
        ("embedding", False),
        ("dense", True),
        ("merge", True),
        ("lstm", True),
        ("dense", False),
    ]
    plan, _ = plan_model(TinyText("flatten").build_model())  # Flatten receives the mask and drops it
    assert [p.masked for p in plan.layers] == [False, True, False, False]


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda e: L.Multiply()([e, L.Dense(4)(e)]), "Multiply"),
        (lambda e: L.GlobalAveragePooling1D(keepdims=True)(e), "GlobalAveragePooling1D|receives a mask"),
    ],
    ids=["multiply", "keepdims-pool"],
)
def test_masks_packs_cannot_apply_are_unpackable(build: Any, reason: str) -> None:
    x = keras.Input((STEPS,))
    model = keras.Model(x, build(L.Embedding(VOCAB, 4, mask_zero=True)(x)))
    with pytest.raises(Unpackable, match=reason):
        plan_model(model)
