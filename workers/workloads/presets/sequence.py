"""Report 2: four kinds of sequences, a recurrent classifier, Adam with beta_1 = 0.5.

Each sequence (``timesteps`` samples of ``t`` in [0, 1)) is one of

0. sine      ``A sin(2 pi f t + phi)``
1. square    ``A sign(sin(2 pi f t + phi))``
2. sawtooth  ``A (2 frac(f t + phi / 2 pi) - 1)``
3. chirp     ``A sin(2 pi (f0 t + (f1 - f0) t^2 / 2) + phi)``

with ``f ~ U(1.5, 4)`` cycles per sequence, ``f0 ~ U(1, 2)``, ``f1 ~ U(3, 6)``,
``phi ~ U(0, 2 pi)``, ``A ~ U(0.5, 1.5)``, plus Gaussian noise. The default
network is a SimpleRNN: its recurrent weights sit next to the
exploding-gradient edge, so at a too-high lr (and beta_1 = 0.5, a short
momentum memory) the loss reaches a minimum near high accuracy and climbs
again, which is the report's symptom.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from workers.workloads.base import Dataset
from workers.workloads.presets._common import PresetWorkload, one_hot

KINDS = ("sine", "square", "sawtooth", "chirp")


def kind_sequences(
    per_class: int, timesteps: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(timesteps) / timesteps
    xs, ys = [], []
    for label in range(len(KINDS)):
        for _ in range(per_class):
            amp = rng.uniform(0.5, 1.5)
            phi = rng.uniform(0, 2 * math.pi)
            f = rng.uniform(1.5, 4.0)
            if label == 0:
                s = np.sin(2 * math.pi * f * t + phi)
            elif label == 1:
                s = np.sign(np.sin(2 * math.pi * f * t + phi))
            elif label == 2:
                s = 2 * np.mod(f * t + phi / (2 * math.pi), 1.0) - 1
            else:
                f0, f1 = rng.uniform(1.0, 2.0), rng.uniform(3.0, 6.0)
                s = np.sin(2 * math.pi * (f0 * t + (f1 - f0) * t**2 / 2) + phi)
            xs.append(amp * s + noise * rng.standard_normal(timesteps))
            ys.append(label)
    x = np.asarray(xs, dtype=np.float32)[..., None]
    y = np.asarray(ys, dtype=np.int64)
    perm = rng.permutation(len(x))
    return x[perm], y[perm]


class SequenceRNN(PresetWorkload):
    """Four sequence kinds, ``SimpleRNN|GRU|LSTM(units) -> Dense(4, softmax)``, one-hot labels."""

    name = "sequence_rnn"

    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        p = self.params
        x, y = kind_sequences(p["n_train_per_class"], p["timesteps"], p["noise"], rng)
        x_val = y_val = None
        if p["n_val_per_class"] > 0:
            xv, yv = kind_sequences(p["n_val_per_class"], p["timesteps"], p["noise"], rng)
            x_val, y_val = xv, one_hot(yv, len(KINDS))
        return Dataset(x, one_hot(y, len(KINDS)), x_val, y_val)

    def build_model(self) -> Any:
        cell = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
        return keras.Sequential(
            [
                keras.Input((self.params["timesteps"], 1)),
                cell[self.params["cell"]](self.params["units"]),
                keras.layers.Dense(len(KINDS), activation="softmax"),
            ]
        )
