"""Report 1: the robot floor-surface LSTM and the user's cos/arccos sanity check.

Motor current of a wheeled robot driving over a surface, sampled at 50 Hz:

    i(t) = b * (1 + N(0, 0.08))                                  base load (friction, battery)
         + a * (1 + N(0, 0.2)) * (sin(2 pi f' t + phi) + 0.3 sin(4 pi f' t + 2 phi))
         + roughness * AR(1) noise  +  N(0, noise)                 surface texture, sensor

with ``b = base * (1 + N(0, 0.05))``, ``f' = f * (1 + N(0, 0.1))`` and
``phi ~ U(0, 2 pi)`` per sequence, then standardised with fixed constants,
``(i - 1.0 A) / 0.4 A``, as a user feeds sensor data to a network (the
constants do not depend on the sample, so every data seed gets the same
scaling). Neighbouring surfaces' base loads overlap at about 2 sigma of the
per-sequence jitter, so the network has to combine load, oscillation
frequency and texture: a well-tuned LSTM (RMSprop lr 3e-3, batch 16) reaches
over 90% training accuracy in 20-40 epochs, not in one, while the user's
lr 1e-3 at batch 32 is slower, and small batches make the loss jump.

Before this scaling (raw currents around 1 A with base loads 0.80-1.15 A and
8% jitter) the same LSTM stayed at 35-50% after 60 epochs at any lr: too hard
to show the report's "reaches 100%, but the loss jumps".
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from workers.workloads.base import Dataset
from workers.workloads.presets._common import PresetWorkload, balanced_counts, one_hot

# (name, base current A, wheel/gait frequency Hz, oscillation amplitude A, roughness A)
# Base loads 0.2 A apart; frequency and amplitude separate the neighbours.
SURFACES: tuple[tuple[str, float, float, float, float], ...] = (
    ("tile", 0.50, 2.5, 0.10, 0.010),
    ("wood", 0.70, 1.5, 0.12, 0.020),
    ("concrete", 0.90, 3.0, 0.10, 0.030),
    ("carpet", 1.10, 1.0, 0.16, 0.040),
    ("gravel", 1.30, 2.0, 0.20, 0.070),
    ("grass", 1.50, 0.8, 0.14, 0.050),
)
SAMPLE_RATE_HZ = 50.0
# Fixed standardisation of the current (mid-range of the base loads, about its spread).
CENTRE_A = 1.0
SCALE_A = 0.4


def sensor_sequences(
    counts: list[int], timesteps: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Current sequences ``(sum(counts), timesteps, 1)`` float32 and integer labels, class by class."""
    t = np.arange(timesteps) / SAMPLE_RATE_HZ
    xs, ys = [], []
    for label, count in enumerate(counts):
        _, base, freq, amp, rough = SURFACES[label]
        for _ in range(count):
            b = base * (1 + 0.05 * rng.standard_normal())
            f = freq * (1 + 0.1 * rng.standard_normal())
            a = amp * (1 + 0.2 * rng.standard_normal())
            phi = rng.uniform(0, 2 * math.pi)
            wave = np.sin(2 * math.pi * f * t + phi) + 0.3 * np.sin(4 * math.pi * f * t + 2 * phi)
            # Texture noise is correlated in time (AR(1), coefficient 0.7), sensor noise is white.
            e = rng.standard_normal(timesteps)
            texture = np.empty(timesteps)
            acc = 0.0
            for k in range(timesteps):
                acc = 0.7 * acc + e[k]
                texture[k] = acc
            texture *= rough * math.sqrt(1 - 0.7**2)
            xs.append(b + a * wave + texture + noise * rng.standard_normal(timesteps))
            ys.append(label)
    x = (np.asarray(xs, dtype=np.float32)[..., None] - CENTRE_A) / SCALE_A
    return x, np.asarray(ys, dtype=np.int64)


def _shuffled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Stored order is shuffled once at generation so that a no-shuffle run is not class-sorted.
    perm = rng.permutation(len(x))
    return x[perm], y[perm]


def _lstm_classifier(timesteps: int, units: int, classes: int) -> Any:
    return keras.Sequential(
        [
            keras.Input((timesteps, 1)),
            keras.layers.LSTM(units),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


class SensorLSTM(PresetWorkload):
    """Six floor surfaces, ``LSTM(units) -> Dense(6, softmax)``, one-hot labels."""

    name = "sensor_lstm"

    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        p = self.params
        k = len(SURFACES)
        x, y = _shuffled(
            *sensor_sequences(balanced_counts(p["n_train"], k), p["timesteps"], p["noise"], rng), rng
        )
        x_val = y_val = None
        if p["n_val"] > 0:
            xv, yv = _shuffled(
                *sensor_sequences(balanced_counts(p["n_val"], k), p["timesteps"], p["noise"], rng), rng
            )
            x_val, y_val = xv, one_hot(yv, k)
        return Dataset(x, one_hot(y, k), x_val, y_val)

    def build_model(self) -> Any:
        return _lstm_classifier(self.params["timesteps"], self.params["units"], len(SURFACES))


def cos_arccos_sequences(
    n: int, timesteps: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Half cos(t), half arccos(t) over random sub-intervals of [-1, 1] (arccos' domain)."""
    counts = balanced_counts(n, 2)
    xs, ys = [], []
    for label, count in enumerate(counts):
        for _ in range(count):
            width = rng.uniform(0.5, 2.0)
            start = rng.uniform(-1.0, 1.0 - width)
            t = np.linspace(start, start + width, timesteps)
            clean = np.cos(t) if label == 0 else np.arccos(t)
            xs.append(clean + noise * rng.standard_normal(timesteps))
            ys.append(label)
    return np.asarray(xs, dtype=np.float32)[..., None], np.asarray(ys, dtype=np.int64)


class CosArccos(PresetWorkload):
    """The 2-class toy: cos(t) (class 0) versus arccos(t) (class 1), same LSTM shape."""

    name = "cos_arccos"

    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        p = self.params
        x, y = _shuffled(*cos_arccos_sequences(p["n_train"], p["timesteps"], p["noise"], rng), rng)
        x_val = y_val = None
        if p["n_val"] > 0:
            xv, yv = _shuffled(*cos_arccos_sequences(p["n_val"], p["timesteps"], p["noise"], rng), rng)
            x_val, y_val = xv, one_hot(yv, 2)
        return Dataset(x, one_hot(y, 2), x_val, y_val)

    def build_model(self) -> Any:
        return _lstm_classifier(self.params["timesteps"], self.params["units"], 2)
