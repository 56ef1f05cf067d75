"""Report 1: the robot floor-surface LSTM and the user's cos/arccos sanity check.

Motor current of a wheeled robot driving over a surface, sampled at 50 Hz:

    i(t) = b * (1 + N(0, 0.08))                                  base load (friction, battery)
         + a * (1 + N(0, 0.2)) * (sin(2 pi f' t + phi) + 0.3 sin(4 pi f' t + 2 phi))
         + roughness * AR(1) noise  +  N(0, noise)                 surface texture, sensor

with ``f' = f * (1 + N(0, 0.1))`` and ``phi ~ U(0, 2 pi)`` per sequence. The
surfaces' (b, f, a, roughness) are close enough that no single statistic
separates them: the network has to combine load, oscillation frequency and
texture, which an LSTM learns over tens of epochs rather than one.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from workers.workloads.base import Dataset
from workers.workloads.presets._common import PresetWorkload, balanced_counts, one_hot

# (name, base current A, wheel/gait frequency Hz, oscillation amplitude A, roughness A)
SURFACES: tuple[tuple[str, float, float, float, float], ...] = (
    ("tile", 0.80, 1.6, 0.05, 0.010),
    ("wood", 0.86, 1.3, 0.06, 0.020),
    ("concrete", 0.92, 1.9, 0.06, 0.030),
    ("carpet", 1.02, 1.1, 0.08, 0.040),
    ("gravel", 1.08, 2.2, 0.10, 0.070),
    ("grass", 1.15, 0.9, 0.09, 0.050),
)
SAMPLE_RATE_HZ = 50.0


def sensor_sequences(
    counts: list[int], timesteps: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Current sequences ``(sum(counts), timesteps, 1)`` float32 and integer labels, class by class."""
    t = np.arange(timesteps) / SAMPLE_RATE_HZ
    xs, ys = [], []
    for label, count in enumerate(counts):
        _, base, freq, amp, rough = SURFACES[label]
        for _ in range(count):
            b = base * (1 + 0.08 * rng.standard_normal())
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
    x = np.asarray(xs, dtype=np.float32)[..., None]
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
