"""What a replica's two seeds mean: initial weights and mini-batch order.

Every trainer (single and pack) must follow these rules so that a replica's
curve depends only on (configuration, init_seed, data_seed):

**Initial weights** (``init_seed``): ``keras.utils.set_random_seed(init_seed)``
immediately before ``workload.build_model()``; the weights drawn at build are
the replica's initial weights. The same call seeds the model's dropout (its
``SeedGenerator`` state is drawn at build and is part of ``model.variables``),
so dropout masks follow the init seed too. ``build_initial_model`` does both
and makes sure the model is built.

**Batch order** (``data_seed``): ``rng = np.random.default_rng(data_seed)``,
created once per replica. For each epoch ``perm = rng.permutation(n)`` when
``shuffle`` is true (the default), else ``np.arange(n)`` (the rng is then not
drawn from). The epoch's batches are the consecutive slices
``perm[i : i + batch_size]`` for ``i = 0, batch_size, 2 * batch_size, ...``;
the last, partial batch is kept. A batch size larger than ``n`` gives one
full batch per epoch. ``steps_per_epoch = ceil(n / batch_size)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np


def steps_per_epoch(n: int, batch_size: int) -> int:
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    return math.ceil(n / batch_size)


class BatchOrder:
    """The sequence of index batches of one replica, epoch after epoch."""

    def __init__(self, n: int, batch_size: int, data_seed: int, *, shuffle: bool = True) -> None:
        self.n = int(n)
        self.batch_size = min(int(batch_size), self.n)
        self.steps_per_epoch = steps_per_epoch(self.n, self.batch_size)
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(data_seed)

    def next_epoch(self) -> list[np.ndarray]:
        """Index arrays (int64) of the next epoch's batches, in order."""
        perm = self._rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        return [perm[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]

    def epochs(self, count: int) -> Iterator[list[np.ndarray]]:
        for _ in range(count):
            yield self.next_epoch()


def build_initial_model(workload: Any, init_seed: int, sample_input: np.ndarray | None = None) -> Any:
    """``set_random_seed(init_seed)`` then ``workload.build_model()``; returns a built model.

    A model that is not built by construction (a Sequential without an
    ``Input``) is built by calling it once on ``sample_input`` in inference
    mode, which draws no dropout randomness.
    """
    keras.utils.set_random_seed(int(init_seed))
    model = workload.build_model()
    if not model.built:
        if sample_input is None:
            raise ValueError("the workload's model is not built; pass sample_input to build it")
        model(sample_input[:1], training=False)
    return model
