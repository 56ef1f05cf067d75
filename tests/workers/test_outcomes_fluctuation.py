"""The worker's run outcome carries the fluctuation measures next to the class evidence."""

from __future__ import annotations

import math

import pytest

from service.core.analysis.thresholds import Thresholds
from workers.outcomes import outcome
from workers.training.interface import EpochRecord, ReplicaResult


def record(epoch: int, loss: float, running: float | None) -> EpochRecord:
    return EpochRecord(epoch, loss, 1.0 if epoch else 0.2, running, None, None, 0.01, None)


def test_outcome_metrics_hold_fluctuation_spikes_and_step_variance() -> None:
    # Full-set loss alternating x1.5 / x(1/1.5) around a slow decline; the running mean is smooth.
    losses = [2.0] + [1.0 * 0.99**e * (1.5 if e % 2 else 1.0) for e in range(1, 41)]
    losses[10] = 4.0 * losses[9]  # one spike, recovered the next epoch
    recs = [record(e, v, None if e == 0 else 1.2 * 0.99**e) for e, v in enumerate(losses)]
    steps = [(s, 1.0 + 0.2 * (-1) ** s) for s in range(100)]
    result = ReplicaResult(key=0, status="completed", epochs=recs, step_losses=steps)
    out = outcome(
        result, 7, num_classes=6, l_chance=math.log(6), majority_accuracy=1 / 6, thresholds=Thresholds()
    )
    m = out.metrics
    assert m["fluctuation"] is not None and m["fluctuation"] > 0.1
    assert m["running_fluctuation"] == pytest.approx(0.0, abs=1e-9)
    assert m["jump_p90"] == pytest.approx(1.5, rel=0.05)
    assert m["spikes"] >= 1 and m["largest_spike"] == pytest.approx(4.0)
    assert "spikes" in out.flags and out.run_class != "diverged"
    assert m["step_loss_var"] == pytest.approx(0.04, rel=0.05)
