"""``Client``: upload numpy data and a compiled Keras model, submit sweeps, get them back.

It uses only the public HTTP API (``/openapi.json`` is the contract). The server and the token come
from the arguments or from ``SWEEPS_SERVER`` and ``SWEEPS_TOKEN``, like the ``sweeps`` CLI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stability_sweeps.payloads import KerasModel, compile_config, keras_archive, npz_bytes
from stability_sweeps.sweeps import Sweep
from stability_sweeps.transport import Transport

DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Dataset:
    """An uploaded dataset; ``summary`` is what the server found (sizes, input shape, classes)."""

    id: int
    name: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class Workload:
    """A registered model on a dataset; ``info`` is the API's answer (loss, compile settings, task)."""

    id: int
    name: str
    info: dict[str, Any]

    @property
    def sweep_ref(self) -> dict[str, Any]:
        """The spec's ``workload`` block that names this workload."""
        return {"id": self.id}


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout_s: float = 60.0) -> None:
        self.url = (url or os.environ.get("SWEEPS_SERVER") or DEFAULT_SERVER).rstrip("/")
        self._t = Transport(self.url, token or os.environ.get("SWEEPS_TOKEN"), timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._t.close()

    def ready(self) -> bool:
        """Whether the server answers and its database is reachable (``GET /readyz``)."""
        return self._t.request("GET", "/readyz").status_code == 200

    def upload_dataset(
        self, x: Any, y: Any, x_val: Any = None, y_val: Any = None, *, name: str = "dataset"
    ) -> Dataset:
        """Upload training (and validation) arrays; labels integer, one-hot, or real values."""
        files = {"file": (f"{name}.npz", npz_bytes(x, y, x_val, y_val), "application/octet-stream")}
        out = self._t.json("POST", "/v1/datasets", files=files, data={"name": name})
        return Dataset(id=int(out["id"]), name=str(out["name"]), summary=dict(out["summary"]))

    def create_workload(
        self,
        model: KerasModel | str | os.PathLike[str],
        dataset: Dataset | int,
        name: str | None = None,
        *,
        with_weights: bool = False,
        loss: str | dict[str, Any] | None = None,
    ) -> Workload:
        """Register a compiled Keras model on a dataset. The model goes as ``to_json()`` with its
        ``get_compile_config()`` (optimizer and settings, loss, metrics), or, with ``with_weights``
        or a path to a ``.keras`` file, as the ``.keras`` archive (a sweep with ``init: saved`` then
        starts every seed from those weights). ``loss`` overrides the compiled loss."""
        dataset_id = dataset.id if isinstance(dataset, Dataset) else int(dataset)
        if with_weights or isinstance(model, (str, os.PathLike)):
            filename, archive = keras_archive(model)
            label = name or Path(filename).stem
            form = {"name": label, "dataset_id": str(dataset_id)}
            files = {"file": (filename, archive, "application/octet-stream")}
            out = self._t.json("POST", "/v1/workloads/keras", data=form, files=files)
        else:
            body: dict[str, Any] = {
                "name": name or model.name,
                "dataset_id": dataset_id,
                "model": json.loads(model.to_json()),
            }
            compiled = compile_config(model)
            if compiled is not None:
                body["compile_config"] = compiled
            if loss is not None:
                body["loss"] = loss
            out = self._t.json("POST", "/v1/workloads", json=body)
        return Workload(id=int(out["id"]), name=str(out["name"]), info=out)

    def submit(
        self, spec: dict[str, Any] | str | os.PathLike[str], *, idempotency_key: str | None = None
    ) -> Sweep:
        """Submit a sweep spec, a dict or a YAML/JSON file (as ``sweeps submit`` reads it)."""
        body = spec if isinstance(spec, dict) else _read_spec(Path(spec))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Sweep(self._t, self._t.json("POST", "/v1/sweeps", json=body, headers=headers))

    def get_sweep(self, sweep_id: int) -> Sweep:
        return Sweep(self._t, self._t.json("GET", f"/v1/sweeps/{sweep_id}"))


def _read_spec(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"no sweep spec at {path}")
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    # The spec reader the CLI uses (YAML 1.2 numbers: 1e-3 is a float), from the same distribution.
    from service.core.spec_yaml import load_spec_yaml

    return load_spec_yaml(text)
