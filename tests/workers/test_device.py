"""configure_device on a machine without GPUs (the CI machine)."""

from __future__ import annotations

import pytest
import tensorflow as tf

from workers.device import configure_device

pytestmark = pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="GPU machine")


def test_cpu_and_auto_without_gpu() -> None:
    assert configure_device("cpu", threads=1) == "cpu"
    assert configure_device("auto") == "cpu"


def test_gpu_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="sees no GPU"):
        configure_device("gpu:0")


def test_bad_name() -> None:
    with pytest.raises(ValueError, match="cpu, gpu, gpu:N or auto"):
        configure_device("tpu")
