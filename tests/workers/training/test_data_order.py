"""workers/training/data_order.py: what a replica's two seeds mean, the rules every trainer follows."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from workers.training.data_order import BatchOrder, build_initial_model, steps_per_epoch


def test_steps_per_epoch_rounds_up_and_rejects_nonsense() -> None:
    assert (steps_per_epoch(10, 3), steps_per_epoch(9, 3), steps_per_epoch(2, 5)) == (4, 3, 1)
    for n, b in ((0, 3), (3, 0)):
        with pytest.raises(ValueError, match="need n >= 1 and batch_size >= 1"):
            steps_per_epoch(n, b)


def test_batches_are_consecutive_slices_of_the_seeded_permutations() -> None:
    order = BatchOrder(10, 4, data_seed=7)
    rng = np.random.default_rng(7)
    for _ in range(2):
        perm = rng.permutation(10)
        batches = order.next_epoch()
        assert [b.tolist() for b in batches] == [perm[0:4].tolist(), perm[4:8].tolist(), perm[8:10].tolist()]
    assert order.steps_per_epoch == 3
    again = BatchOrder(10, 4, data_seed=7)
    other = BatchOrder(10, 4, data_seed=8)
    first, second = again.next_epoch(), other.next_epoch()
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_without_shuffle_every_epoch_is_in_order_and_a_large_batch_is_one_batch() -> None:
    fixed = BatchOrder(5, 2, data_seed=1, shuffle=False)
    epochs = list(fixed.epochs(3))
    assert len(epochs) == 3 and all([b.tolist() for b in e] == [[0, 1], [2, 3], [4]] for e in epochs)
    big = BatchOrder(5, 64, data_seed=1)
    assert big.batch_size == 5 and big.steps_per_epoch == 1
    (only,) = big.next_epoch()
    assert sorted(only.tolist()) == [0, 1, 2, 3, 4]


class _Workload:
    def __init__(self, built: bool) -> None:
        self.built = built

    def build_model(self) -> keras.Model:
        if self.built:
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)])
        return keras.Sequential([keras.layers.Dense(2)])


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_initial_weights_follow_the_init_seed() -> None:
    a = _weights(build_initial_model(_Workload(True), 3))
    b = _weights(build_initial_model(_Workload(True), 3))
    c = _weights(build_initial_model(_Workload(True), 4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_a_model_built_on_first_call_needs_a_sample_input() -> None:
    with pytest.raises(ValueError, match="pass sample_input"):
        build_initial_model(_Workload(False), 0)
    model = build_initial_model(_Workload(False), 0, sample_input=np.zeros((4, 3), np.float32))
    assert model.built and model.get_weights()[0].shape == (3, 2)
