"""Registering an uploaded Keras model as a workload: from its JSON or from a ``.keras`` file.

Both paths end here: the compile settings are parsed (``compile_settings``),
the model is loaded in safe mode (with its saved weights, for a ``.keras``
file that has them) and checked against the dataset and the loss
(``model_checks``), then stored. The loss is, first found: the one given
explicitly, the compiled one, the one the dataset's labels call for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.core.compile_settings import CompileSettings, metric_names, parse_compile_config
from service.core.db import Database
from service.core.keras_archive import load_with_weights, read_archive
from service.core.losses import parse_loss
from service.core.model_checks import inspect_model
from service.core.repo import datasets as datasets_repo
from service.core.repo import workloads as workloads_repo
from service.core.repo.workloads import WorkloadRecord
from service.core.uploads import DatasetSummary


@dataclass(frozen=True)
class ModelUpload:
    name: str
    dataset_id: int
    model_json: str
    compile_config: dict[str, Any] | None = None
    loss: Any = None  # a Keras loss name or serialized config; None: compiled, else from the labels
    metrics: list[Any] | None = None  # None: the compiled metrics, else ["accuracy"]
    weights: bytes | None = None


def _dataset_summary(db: Database, dataset_id: int) -> DatasetSummary:
    with db.transaction() as s:
        stored = datasets_repo.get_dataset(s, dataset_id=dataset_id).summary
    return DatasetSummary(
        n_train=int(stored["n_train"]),
        n_val=int(stored["n_val"]),
        input_shape=tuple(int(d) for d in stored["input_shape"]),
        label_format=stored["label_format"],
        num_classes=int(stored["num_classes"]),
        x_dtype=str(stored["x_dtype"]),
        class_counts=stored.get("class_counts"),
    )


def register_model(db: Database, upload: ModelUpload) -> WorkloadRecord:
    """Check and store an uploaded model; ``InvalidUpload`` (422) says what to change."""
    settings = (
        parse_compile_config(upload.compile_config)
        if upload.compile_config is not None
        else CompileSettings(params={}, loss=None, metrics=[])
    )
    summary = _dataset_summary(db, upload.dataset_id)
    loss = upload.loss if upload.loss is not None else settings.loss
    if loss is None:
        loss = summary.suggested_loss
    if upload.metrics is not None:
        metrics = metric_names(list(upload.metrics))
    else:
        metrics = settings.metrics if upload.compile_config is not None else ["accuracy"]
    model, warnings = load_with_weights(upload.model_json, upload.weights)
    info = inspect_model(model, summary, loss, warnings)
    info["compile"] = settings.record(parse_loss(loss))
    info["n_train"] = summary.n_train
    with db.transaction() as s:
        datasets_repo.get_dataset(s, dataset_id=upload.dataset_id)  # still there
        return workloads_repo.insert_workload(
            s,
            name=upload.name,
            dataset_id=upload.dataset_id,
            model_json=upload.model_json,
            loss=str(info["loss"]),
            metrics=metrics,
            summary=info,
            initial_weights=upload.weights,
        )


def register_keras_file(
    db: Database, *, name: str, dataset_id: int, data: bytes, max_bytes: int
) -> WorkloadRecord:
    """A ``.keras`` archive, checked before it is opened (``keras_archive``), as a workload."""
    archive = read_archive(data, max_bytes=max_bytes)
    return register_model(
        db,
        ModelUpload(
            name=name,
            dataset_id=dataset_id,
            model_json=archive.model_json,
            compile_config=archive.compile_config,
            weights=archive.weights,
        ),
    )
