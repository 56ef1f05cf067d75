"""The sharpness series the run and configuration pages draw: measured epochs only."""

from __future__ import annotations

import math

import pytest

from service.core.records import CurvePoint
from service.core.sharpness_plots import run_sharpness, sharpness_band
from service.core.states import RunStatus
from tests.core.test_plots import _run


def _curve(sharp: list[float | None], *, pre: bool = False, every: int = 2) -> list[CurvePoint]:
    """Loss 1.0 per epoch; sharpness at every ``every``-th epoch from ``sharp`` in turn; threshold 20."""
    out = []
    for e in range(every * (len(sharp) - 1) + 1):
        s = sharp[e // every] if e % every == 0 else None
        out.append(
            CurvePoint(
                e, 1.0, None, None, None, None, 0.1, None,
                sharpness=s,
                preconditioned_sharpness=(None if s is None else 2 * s) if pre else None,
                stability_threshold=None if s is None else 20.0,
            )
        )  # fmt: skip
    return out


def test_run_series_keeps_measured_epochs_only() -> None:
    out = run_sharpness(_curve([5.0, 10.0, math.nan, 19.0]))
    assert out is not None
    assert out["epoch"] == [0, 2, 6] and out["sharpness"] == [5.0, 10.0, 19.0]
    assert out["stability_threshold"] == [20.0] * 3 and out["compared"] == "sharpness"
    assert run_sharpness(_curve([5.0], pre=True))["compared"] == "preconditioned_sharpness"  # type: ignore[index]
    assert run_sharpness([CurvePoint(0, 1.0, None, None, None, None, 0.1, None)]) is None
    sampled = run_sharpness(_curve([1.0] * 100, every=5), max_points=10)
    assert sampled is not None and len(sampled["epoch"]) == 10 and sampled["epoch"][-1] == 495


def test_band_over_stable_seeds_failed_seeds_apart() -> None:
    runs = [_run(1, "converged"), _run(2, "converged"), _run(3, "diverged", status=RunStatus.NONFINITE)]
    curves = {1: _curve([4.0, 8.0, 12.0]), 2: _curve([6.0, 10.0]), 3: _curve([5.0, 25.0])}
    out = sharpness_band(runs, curves)
    assert out is not None and out["compared"] == "sharpness"
    band = out["band"]
    assert band["epochs"] == [0, 2, 4] and band["n_stable"] == 2
    assert band["sharpness"]["median"] == pytest.approx([5.0, 9.0, 12.0])
    assert band["stability_threshold"]["median"] == [20.0] * 3
    assert out["failed"] == [
        {"run_id": 3, "seed": 3, "run_class": "diverged", "epochs": [0, 2], "value": [5.0, 25.0]}
    ]
    plain = {1: [CurvePoint(0, 1.0, None, None, None, None, 0.1, None)]}
    assert sharpness_band(runs[:1], plain) is None
