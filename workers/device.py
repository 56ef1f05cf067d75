"""Choose the TensorFlow device of a worker process, once, before any training.

``configure_device`` must run before TensorFlow creates its runtime (the first
op or model): device visibility, memory growth and thread pools are fixed
after that. Calling it later only logs what could not be changed.
"""

from __future__ import annotations

import logging

import tensorflow as tf

logger = logging.getLogger(__name__)


def _gpu_index(device: str) -> int | None:
    if device in ("gpu", "auto"):
        return None
    if device.startswith("gpu:") and device[4:].isdigit():
        return int(device[4:])
    raise ValueError(f"device {device!r}: use cpu, gpu, gpu:N or auto")


def _gpu_name(gpu: tf.config.PhysicalDevice) -> str:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except (RuntimeError, ValueError):  # not all builds report details
        return str(gpu.name)
    return str(details.get("device_name", gpu.name))


def configure_device(device: str, *, threads: int | None = None) -> str:
    """Make ``device`` ("cpu", "gpu", "gpu:N" or "auto") the one this process trains on.

    - ``cpu`` hides every GPU, so that no op lands on one by default.
    - ``gpu`` / ``gpu:N`` keep only that GPU visible (``gpu`` is GPU 0) with
      memory growth on, so several workers can share it; a ``RuntimeError``
      says so when no GPU (or not GPU N) exists.
    - ``auto`` uses GPU 0 when there is one, else the CPU.

    ``threads`` sets TensorFlow's intra- and inter-op thread pools (1 for a
    worker pinned to one core, so that workers on one machine do not fight
    over cores); ``None`` leaves TensorFlow's default (all cores).

    Returns a description such as ``"cpu"`` or ``"gpu:0 (NVIDIA H100 80GB HBM3)"``;
    trainers address the chosen GPU as ``gpu:0`` afterwards, since it is the only visible one.
    """
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:  # the runtime already started
            logger.warning("could not set TensorFlow threads to %d: %s", threads, exc)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu":
        _set_visible([], gpus)
        return "cpu"
    index = _gpu_index(device)
    if not gpus:
        if device == "auto":
            return "cpu"
        raise RuntimeError(
            f"device {device!r} was asked for but TensorFlow sees no GPU; install the GPU build "
            "(pip install 'stability-sweeps[gpu]'), check nvidia-smi, or run the worker with --device cpu"
        )
    i = index or 0
    if i >= len(gpus):
        raise RuntimeError(f"device {device!r}: only {len(gpus)} GPU(s) visible (gpu:0..gpu:{len(gpus) - 1})")
    chosen = gpus[i]
    _set_visible([chosen], gpus)
    try:
        tf.config.experimental.set_memory_growth(chosen, True)
    except (RuntimeError, ValueError) as exc:
        logger.warning("could not enable memory growth on %s: %s", chosen.name, exc)
    return f"gpu:{i} ({_gpu_name(chosen)})"


def _set_visible(keep: list[tf.config.PhysicalDevice], gpus: list[tf.config.PhysicalDevice]) -> None:
    if not gpus:
        return
    try:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_visible_devices(cpus + keep)
    except RuntimeError as exc:
        logger.warning("could not change visible devices (TensorFlow already initialised): %s", exc)
