"""Report 3: the class is the colour of one pixel; the rest of the image is noise.

Images are ``S x S x 3`` float32 with every channel ``U(0, 1)`` except the
fixed pixel ``(S // 2, S // 2)``, which is pure red ``(1, 0, 0)`` for class 0
and pure green ``(0, 1, 0)`` for class 1. Classes are balanced and the stored
order is shuffled once. The model is the user's, three softmax outputs for two
classes included: ``Dense(units, relu)`` on every pixel of the ``(S, S, 3)``
input, ``Dropout``, ``Flatten``, ``Dense(3, softmax)``. Labels are integers
(sparse cross-entropy) or one-hot over the 3 outputs (categorical).
``pixel_scale="byte"`` multiplies the images by 255 (images fed without
``rescale=1/255``).

How runs get stuck at 50%: Adam moves every weight by about ``lr`` per step
whatever its gradient, and the ``Flatten -> Dense(3)`` layer has
``S * S * units`` inputs, all non-negative after the ReLU. The first steps
therefore shift the logits by roughly ``lr * S**2 * units * mean(h)`` (the
inputs are non-negative, so a logit's weight updates share one sign): above
some ``lr * S**2``
the logits blow up (training loss in the tens in the first epoch), and
whether a run recovers to learn the pixel or ends with every ReLU unit dead
for every pixel, the informative one included (a constant output: loss
ln 2, accuracy exactly 50% on training and validation data, no gradient
left to recover; inferred from that signature), depends on the initial
weights and the batch order. The band where seeds split sits at
``lr * S**2 ~ 25-100`` at every size measured (S = 16: lr 0.1-0.3; S = 32:
lr 0.05; S = 64: lr 0.025; docs/reports.md), and the user's lr 1e-3 at
S = 224 is ``lr * S**2 = 50``: inside it. So ``image_size=16`` with lr 0.2
is the CPU-sized equivalent of the user's configuration; the direct
224 x 224 sweep needs a GPU worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from workers.workloads.base import Dataset
from workers.workloads.presets._common import PresetWorkload, one_hot

OUTPUTS = 3  # as the user wrote it, for 2 classes
RED = (1.0, 0.0, 0.0)
GREEN = (0.0, 1.0, 0.0)


def pixel_images(per_class: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = 2 * per_class
    x = rng.uniform(0.0, 1.0, size=(n, size, size, 3)).astype(np.float32)
    y = np.repeat(np.arange(2), per_class)
    c = size // 2
    x[y == 0, c, c, :] = RED
    x[y == 1, c, c, :] = GREEN
    perm = rng.permutation(n)
    return x[perm], y[perm]


def scaled(x: np.ndarray, scale: str) -> np.ndarray:
    """``byte``: the 0..255 values of images loaded without ``rescale=1/255``."""
    return x * np.float32(255.0) if scale == "byte" else x


class PixelColor(PresetWorkload):
    name = "pixel_color"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        if self.params["labels"] == "one_hot":
            self.loss = "categorical_crossentropy"

    def _labels(self, y: np.ndarray) -> np.ndarray:
        return one_hot(y, OUTPUTS) if self.params["labels"] == "one_hot" else y

    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        p = self.params
        x, y = pixel_images(p["n_train_per_class"], p["image_size"], rng)
        x = scaled(x, p["pixel_scale"])
        x_val = y_val = None
        if p["n_val_per_class"] > 0:
            xv, yv = pixel_images(p["n_val_per_class"], p["image_size"], rng)
            x_val, y_val = scaled(xv, p["pixel_scale"]), self._labels(yv)
        return Dataset(x, self._labels(y), x_val, y_val)

    def build_model(self) -> Any:
        s = self.params["image_size"]
        return keras.Sequential(
            [
                keras.Input((s, s, 3)),
                keras.layers.Dense(self.params["units"], activation="relu"),
                keras.layers.Dropout(self.params["dropout"]),
                keras.layers.Flatten(),
                keras.layers.Dense(OUTPUTS, activation="softmax"),
            ]
        )
