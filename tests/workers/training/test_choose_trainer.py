"""Choosing the trainer: packs when the workload can be packed, one replica at a time when not."""

from __future__ import annotations

import logging
from typing import Any

import keras
import pytest

from service.core.records import RunTraining
from tests.workers.training.pack_workloads import Conv, TinyDense, TinyLSTM
from workers.training.choose_trainer import TrainerChooser
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer, can_pack
from workers.training.single import SingleTrainer
from workers.training.training_plan import TrainingPlan


def test_packs_when_it_can_and_says_why_not(caplog: pytest.LogCaptureFixture) -> None:
    chooser = TrainerChooser(device="cpu", max_replicas=8)
    plan = TrainingPlan(record_steps=True)
    packed = chooser.trainer_for(TinyLSTM(), plan)
    assert isinstance(packed, PackTrainer) and packed.max_replicas == 8 and packed.plan is plan
    with caplog.at_level(logging.WARNING):
        single = chooser.trainer_for(Conv(), plan)
        chooser.trainer_for(Conv(), plan)
    assert isinstance(single, SingleTrainer) and single.plan is plan
    assert "cannot be packed" in caplog.text and "one replica at a time" in caplog.text
    assert caplog.text.count("cannot be packed") == 1  # once per workload and chooser


def test_the_pack_trainers_of_one_chooser_share_their_caches() -> None:
    chooser = TrainerChooser(device="cpu", max_replicas=8)
    a = chooser.trainer_for(TinyLSTM(), TrainingPlan())
    b = chooser.trainer_for(TinyLSTM(), TrainingPlan(record_steps=True))
    other = TrainerChooser(device="cpu", max_replicas=8).trainer_for(TinyLSTM(), TrainingPlan())
    assert isinstance(a, PackTrainer) and isinstance(b, PackTrainer) and isinstance(other, PackTrainer)
    assert a.caches is b.caches
    assert other.caches is not a.caches


class _Noisy(TinyDense):
    """A layer no pack supports (GaussianNoise), so it stays unpackable whatever layers packs gain."""

    name = "noisy"

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [keras.Input((3, 2)), L.GaussianNoise(0.1), L.Flatten(), L.Dense(2, activation="softmax")]
        )


def test_runs_trained_one_at_a_time_say_why() -> None:
    wl = _Noisy()
    ok, reason = can_pack(wl)
    assert not ok and "GaussianNoise" in reason
    replica = [ReplicaSpec(0, {}, 1, 2)]
    by_chooser = TrainerChooser(device="cpu", max_replicas=8).trainer_for(wl, TrainingPlan())
    by_pack = PackTrainer()
    for trainer in (by_chooser, by_pack):
        (result,) = trainer.train(wl, replica, 1, NullObserver())
        assert result.status == "completed"
        assert result.training is not None and result.training.mode == "single"
        # The reason is can_pack's (the layer's automatic name differs from build to build).
        assert "GaussianNoise" in (result.training.fallback_reason or "")
    (alone,) = SingleTrainer().train(wl, replica, 1, NullObserver())
    assert alone.training == RunTraining(mode="single")  # chosen, not a fallback
