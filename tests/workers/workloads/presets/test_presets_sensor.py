"""workers/workloads/presets/sensor.py: report 1's floor-surface sequences and the cos/arccos toy."""

from __future__ import annotations

import numpy as np

from workers.workloads.registry import build_preset


def test_sensor_lstm_shapes_match_the_report() -> None:
    ds = build_preset("sensor_lstm", {}).dataset()
    assert ds.x_train.shape == (98, 100, 1) and ds.y_train.shape == (98, 6)
    assert sorted(ds.y_train.sum(axis=0).astype(int).tolist(), reverse=True) == [17, 17, 16, 16, 16, 16]
    assert ds.x_val is None


def test_sensor_lstm_is_standardised_and_its_classes_overlap_but_differ() -> None:
    """Scaled like a user would feed it; neighbouring surfaces overlap in load alone, so it is not trivial."""
    ds = build_preset("sensor_lstm", {}).dataset()
    assert abs(float(ds.x_train.mean())) < 0.2 and 0.5 < float(ds.x_train.std()) < 1.5
    level = ds.x_train.mean(axis=(1, 2))
    labels = ds.y_train.argmax(axis=1)
    means = [float(level[labels == k].mean()) for k in range(6)]
    assert means == sorted(means) and min(np.diff(means)) > 0.2  # base loads 0.2 A apart, scaled by 0.4 A
    # The per-sequence load jitter makes neighbours overlap: load alone does not separate every pair.
    ranges = [(level[labels == k].min(), level[labels == k].max()) for k in range(6)]
    assert any(ranges[k][1] > ranges[k + 1][0] for k in range(5))


def test_cos_arccos_is_two_balanced_classes_of_their_functions() -> None:
    w = build_preset("cos_arccos", {"n_train": 10, "n_val": 4, "timesteps": 12, "noise": 0.0})
    ds = w.dataset()
    assert ds.x_train.shape == (10, 12, 1) and ds.y_train.shape == (10, 2)
    assert (
        ds.y_train.sum(axis=0).tolist() == [5.0, 5.0]
        and ds.x_val is not None
        and ds.x_val.shape == (4, 12, 1)
    )
    # Without noise, cos stays in [cos 1, 1] on [-1, 1] and arccos in [0, pi]; arccos reaches past 1.
    cos, arccos = ds.x_train[ds.y_train[:, 0] == 1], ds.x_train[ds.y_train[:, 1] == 1]
    assert float(cos.min()) >= np.cos(1.0) - 1e-6 and float(cos.max()) <= 1.0 + 1e-6
    assert float(arccos.min()) >= -1e-6 and float(arccos.max()) <= np.pi + 1e-6
