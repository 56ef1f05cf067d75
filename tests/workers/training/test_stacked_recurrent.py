"""Bidirectional recurrent layers in a pack: each replica equals its lone Keras run, behind a mask too."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import pack_vs_lone_runs
from workers.training._stacked_model import Unpackable, plan_model
from workers.workloads.base import Dataset

L = keras.layers
VOCAB, STEPS = 8, 6


class TinyBidirectional:
    """Tokens (zero-padded on the right) -> Embedding -> Bidirectional(...) -> softmax."""

    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def __init__(self, cell: str, merge_mode: str, sequences: bool, mask_zero: bool) -> None:
        self.cell, self.merge_mode, self.sequences, self.mask_zero = cell, merge_mode, sequences, mask_zero
        self.name = f"tiny_bidirectional_{cell}_{merge_mode}_{sequences}_{mask_zero}"

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(13)
        x = rng.integers(1, VOCAB, size=(32, STEPS)).astype(np.float32)
        for i, length in enumerate(rng.integers(2, STEPS + 1, size=32)):
            x[i, length:] = 0
        y = (x[:, 0] > x[:, 1]).astype(np.int32)
        return Dataset(x[:24], y[:24], x[24:], y[24:])

    def build_model(self) -> Any:
        cell = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[self.cell]
        x = keras.Input((STEPS,))
        e = L.Embedding(VOCAB, 3, mask_zero=self.mask_zero)(x)
        h = L.Bidirectional(cell(3, return_sequences=self.sequences), merge_mode=self.merge_mode)(e)
        if self.sequences:  # Flatten: every step's output counts, in order, masked ones too
            h = L.Flatten()(h)
        return keras.Model(x, L.Dense(2, activation="softmax")(h))


@pytest.mark.parametrize(
    "workload",
    [
        TinyBidirectional("lstm", "concat", sequences=False, mask_zero=True),
        TinyBidirectional("gru", "sum", sequences=True, mask_zero=True),
        TinyBidirectional("simple_rnn", "ave", sequences=True, mask_zero=False),
        TinyBidirectional("lstm", "mul", sequences=True, mask_zero=False),
    ],
    ids=lambda w: w.name.removeprefix("tiny_bidirectional_"),
)
def test_bidirectional_replicas_equal_lone_runs(workload: TinyBidirectional) -> None:
    assert pack_vs_lone_runs(workload) < 1e-4


def test_bidirectional_packs_cannot_follow_are_unpackable() -> None:
    x = keras.Input((STEPS, 2))
    both = L.Bidirectional(L.LSTM(3), merge_mode=None)(x)
    with pytest.raises(Unpackable, match="merge_mode=None|more than one"):
        plan_model(keras.Model(x, both))
    own = L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(4, go_backwards=True))(x)
    with pytest.raises(Unpackable, match="its own backward layer"):
        plan_model(keras.Model(x, own))
    regularised = L.Bidirectional(L.GRU(3, kernel_regularizer="l2"))(x)
    with pytest.raises(Unpackable, match="kernel regularizer"):
        plan_model(keras.Model(x, regularised))
