"""Choosing the trainer: packs when the workload can be packed, one replica at a time when not."""

from __future__ import annotations

import logging

import pytest

from tests.workers.training.pack_workloads import Conv, TinyLSTM
from workers.training.choose_trainer import TrainerChooser
from workers.training.packs import PackTrainer
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
