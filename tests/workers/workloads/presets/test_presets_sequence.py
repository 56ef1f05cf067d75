"""workers/workloads/presets/sequence.py: report 2's four kinds of sequences and its recurrent classifier."""

from __future__ import annotations

import numpy as np

from workers.workloads.presets.sequence import KINDS, kind_sequences
from workers.workloads.registry import build_preset


def test_kind_sequences_are_balanced_shuffled_and_shaped_by_their_kind() -> None:
    x, y = kind_sequences(5, 40, 0.0, np.random.default_rng(0))
    assert x.shape == (20, 40, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [5] * len(KINDS)
    assert y.tolist() != sorted(y.tolist())  # shuffled, not class by class
    for label, seq in zip(y, x[..., 0], strict=True):
        amp = np.abs(seq).max()
        assert 0.5 - 1e-6 <= amp <= 1.5 + 1e-6
        if KINDS[label] == "square":  # without noise a square wave only takes +-A (or 0 on a zero crossing)
            assert set(np.round(np.abs(seq[seq != 0]), 5)) == {np.round(amp, 5)}
    again, _ = kind_sequences(5, 40, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(x, again)


def test_sequence_rnn_dataset_and_the_chosen_cell() -> None:
    w = build_preset(
        "sequence_rnn", {"n_train_per_class": 2, "n_val_per_class": 1, "timesteps": 8, "cell": "gru"}
    )
    ds = w.dataset()
    assert ds.x_train.shape == (8, 8, 1) and ds.y_train.shape == (8, 4) and ds.y_train.sum() == 8
    assert ds.x_val is not None and ds.x_val.shape == (4, 8, 1)
    model = w.build_model()
    assert type(model.layers[0]).__name__ == "GRU" and model.output_shape == (None, len(KINDS))
    assert build_preset("sequence_rnn", {"n_val_per_class": 0}).dataset().x_val is None
