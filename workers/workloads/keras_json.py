"""A user workload: a Keras model (JSON, or a ``.keras`` file's) plus an uploaded ``.npz`` dataset.

Both are validated with ``service.core.uploads`` / ``service.core.model_checks``
(safe-mode deserialisation, no custom code; fixed seeds in the JSON removed).
``build_model`` deserialises the JSON again for every replica, so the initial
weights are drawn under the replica's ``init_seed``
(``workers.training.data_order``), unless the workload starts from saved
weights (``init: saved``): then every replica gets those weights and only the
data order (and dropout) follows the seeds. Features are cast to float32;
integer labels become int64 of shape ``(n,)``, one-hot labels float32,
binary and regression targets float32 of shape ``(n, 1)``.

``default_params`` are the compiled optimizer and all its settings
(``service.core.compile_settings``): every dimension a sweep does not vary
takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.core.keras_archive import set_saved_weights
from service.core.losses import loss_from_spec
from service.core.model_checks import inspect_keras_model
from service.core.uploads import Task, inspect_npz, load_npz_arrays, safe_model_from_json
from workers.workloads.base import Dataset


class KerasJsonWorkload:
    def __init__(
        self,
        model_json: str,
        npz_bytes: bytes,
        loss: str,
        *,
        name: str = "upload",
        default_params: Mapping[str, Any] | None = None,
        task: Task = "auto",
        initial_weights: bytes | None = None,
    ) -> None:
        info = loss_from_spec(loss)
        if info.family == "regression":
            task = "regression"
        self.summary = inspect_npz(npz_bytes, task=task)
        self.model_info = inspect_keras_model(model_json, self.summary, loss)
        self.name = name
        self.loss = info.spec
        self.family = info.family
        self.num_classes = self.summary.num_classes
        self.default_params: dict[str, Any] = dict(default_params or {})
        self.initial_weights = initial_weights
        self._model_json = model_json
        self._npz = npz_bytes
        self._dataset: Dataset | None = None

    def _labels(self, y: np.ndarray) -> np.ndarray:
        if self.family in ("binary", "regression"):
            return y.reshape(-1, 1).astype(np.float32)
        if self.summary.label_format == "integer":
            return y.reshape(-1).astype(np.int64)
        return y.astype(np.float32)

    def dataset(self) -> Dataset:
        if self._dataset is None:
            a = load_npz_arrays(self._npz)
            has_val = "x_val" in a
            self._dataset = Dataset(
                a["x_train"].astype(np.float32),
                self._labels(a["y_train"]),
                a["x_val"].astype(np.float32) if has_val else None,
                self._labels(a["y_val"]) if has_val else None,
            )
        return self._dataset

    def build_model(self) -> Any:
        model, _ = safe_model_from_json(self._model_json)
        if self.initial_weights is not None:
            set_saved_weights(model, self.initial_weights)
        return model
