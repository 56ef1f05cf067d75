"""``stability_sweeps.sweep(model, x, y, ...)`` end to end: a compiled Keras model trained as
compiled (RMSprop with its rho; the space varies only the learning rate and batch size), on a live
`sweeps serve` and on the service it starts itself when there is no server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import stability_sweeps
from stability_sweeps import Client, Sweep, embedded
from tests.stability_sweeps.conftest import RUN_CLASSES, tiny_data, tiny_model

pytestmark = pytest.mark.slow

SPACE = {"learning_rate": [1e-3, 1e-2], "batch_size": [4]}


def _check_trained_as_compiled(sweep: Sweep) -> None:
    assert sweep.state == "completed", sweep
    runs = sweep.runs()
    assert len(runs) == 4 and all(r["run_class"] in RUN_CLASSES for r in runs), runs
    configs = sweep.configs()
    assert sorted(c["params"]["learning_rate"] for c in configs) == [1e-3, 1e-2]
    for c in configs:  # what the configuration trained with: the compiled optimizer and its rho
        used = c["trained_with"]
        assert used["optimizer"] == "rmsprop" and used["rho"] == 0.8, used
        assert used["learning_rate"] == c["params"]["learning_rate"] and used["batch_size"] == 4, used
    assert sweep.report().headline


def test_sweep_on_a_live_server(served: Client) -> None:
    x, y = tiny_data()
    sweep = stability_sweeps.sweep(
        tiny_model(), x, y, validation_data=(x[:4], y[:4]), space=SPACE, seeds=2, epochs=2, progress=False
    )
    assert sweep.url.startswith(served.url + "/sweeps/")
    _check_trained_as_compiled(sweep)

    # init="saved": the model goes with its weights (.keras) and every seed starts from them.
    saved = stability_sweeps.sweep(
        tiny_model(), x, y, space=SPACE, seeds=2, epochs=2, init="saved", wait=False
    )
    assert saved.info["spec"]["init"] == "saved"
    saved.cancel()


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SWEEPS_SERVER", raising=False)
    monkeypatch.setenv("SWEEPS_WORKERS", "1")
    yield
    embedded.stop_shared()


def test_sweep_without_a_server_starts_one_for_the_process(no_server: None) -> None:
    x, y = tiny_data()
    sweep = stability_sweeps.sweep(tiny_model(), x, y, space=SPACE, seeds=2, epochs=2, progress=False)
    service = embedded.shared()
    assert sweep.url == f"{service.url}/sweeps/{sweep.id}"
    _check_trained_as_compiled(sweep)
    again = stability_sweeps.sweep(tiny_model(), x, y, space=SPACE, seeds=2, epochs=2, wait=False)
    assert embedded.shared() is service and again.state == "queued"  # one service per process
