"""``sweep()``: one call from a compiled Keras model and numpy arrays to a finished sweep, like
Keras Tuner's ``search``."""

from __future__ import annotations

import os
from typing import Any

from stability_sweeps import embedded
from stability_sweeps.client import Client
from stability_sweeps.payloads import KerasModel
from stability_sweeps.sweeps import Sweep

# Without a space: the learning rate over three decades, the dimension most runs fail on.
DEFAULT_SPACE: dict[str, Any] = {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True, "points": 7}}


def sweep(
    model: KerasModel,
    x: Any,
    y: Any,
    validation_data: tuple[Any, Any] | None = None,
    space: dict[str, Any] | None = None,
    seeds: int | list[int] | dict[str, Any] = 5,
    epochs: int = 40,
    server: str | None = None,
    *,
    name: str | None = None,
    token: str | None = None,
    progress: bool = True,
    wait: bool = True,
    **spec_extras: Any,
) -> Sweep:
    """Sweep ``model`` as compiled (its optimizer and settings, loss, metrics are used wherever
    ``space`` does not vary them) on ``x``, ``y`` with ``seeds`` seeds per configuration.

    ``server`` (or ``SWEEPS_SERVER``) names a running service; without one, a service with local
    workers starts in the background for the life of this Python process. ``spec_extras`` go into
    the sweep spec as they are (``sampler``, ``stability``, ``init``, ...); with ``init="saved"``
    the model is sent with its weights and every seed starts from them. Returns the sweep,
    finished unless ``wait=False``.
    """
    url = server or os.environ.get("SWEEPS_SERVER") or embedded.shared().url
    client = Client(url, token)
    x_val, y_val = validation_data if validation_data is not None else (None, None)
    label = name or model.name
    dataset = client.upload_dataset(x, y, x_val, y_val, name=label)
    with_weights = spec_extras.get("init") == "saved"
    workload = client.create_workload(model, dataset, name=label, with_weights=with_weights)
    spec = {
        "name": label,
        "workload": workload.sweep_ref,
        "epochs": epochs,
        "seeds": seeds,
        "space": DEFAULT_SPACE if space is None else space,
        **spec_extras,
    }
    submitted = client.submit(spec)
    return submitted.wait(progress=progress) if wait else submitted
