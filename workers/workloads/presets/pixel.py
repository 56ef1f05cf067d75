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

How runs get stuck at 50% (measured with ``examples/pixel_color.yaml``): the
``Dense(units, relu)`` weights are shared by every pixel, so the gradient of
the whole image lands on its few weights and biases; at too high an Adam
learning rate the first updates can push every unit below zero for every
pixel, the informative one included. The network then outputs a constant:
the loss sits at ln 2 and the accuracy at exactly 50% on training and
validation data from the first epoch on, and no gradient flows back to
recover (dead ReLUs; inferred from that signature, the activations were not
inspected). Where that happens depends on the initial weights and
the batch order, so around the edge some seeds train in one epoch and others
never do: at ``image_size=16`` with 0..1 pixels, 2 of 8 seeds trained at lr
0.1, 2 of 8 at 0.2 and 1 of 8 at 0.3, while the user's lr 1e-3 trained all 8
(docs/reports.md). Whether the
user's 224 x 224 images bring that band down to lr 1e-3 is untested here
(it needs a GPU worker).
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
