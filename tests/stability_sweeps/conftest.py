"""The client against the real app over real HTTP: uvicorn in a thread on a free port, a real
database (SQLite file, and PostgreSQL where configured), a real token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database
from stability_sweeps import Client
from tests.helpers import LiveServer, live_server, token_for

RUN_CLASSES = {"diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A Client on a live `sweeps serve` with one worker, found through SWEEPS_SERVER and SWEEPS_TOKEN."""
    with live_server(tmp_path, workers=1) as (base, env):
        monkeypatch.setenv("SWEEPS_SERVER", base)
        monkeypatch.setenv("SWEEPS_TOKEN", token_for(env))
        with Client() as c:
            yield c


@pytest.fixture
def live_api(settings: Settings, db: Database) -> Iterator[str]:
    """The API's base URL (no local workers: sweeps stay queued unless a test starts one)."""
    with LiveServer(create_app(settings, db)) as live:
        yield live.url


@pytest.fixture
def api(live_api: str, token: str) -> Iterator[Client]:
    with Client(live_api, token) as c:
        yield c


def tiny_data(n: int = 12, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples of 4 features whose class is the largest of the first ``classes`` features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, np.argmax(x[:, :classes], axis=1).astype(np.int64)


def tiny_model(*, compiled: bool = True, classes: int = 3) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ],
        name="tiny_mlp",
    )
    if compiled:
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.8),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model
