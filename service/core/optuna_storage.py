"""One Optuna RDB storage per database URL and process."""

from __future__ import annotations

import threading

import optuna

_lock = threading.Lock()
_storages: dict[str, optuna.storages.RDBStorage] = {}


def get_storage(url: str) -> optuna.storages.RDBStorage:
    with _lock:
        storage = _storages.get(url)
        if storage is None:
            kwargs: dict[str, object] = {}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 60}
            else:
                kwargs["pool_pre_ping"] = True
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            _storages[url] = storage
        return storage
