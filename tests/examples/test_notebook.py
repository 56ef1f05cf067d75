"""examples/your_model.ipynb executed as a user would run it, in a Jupyter kernel (nbclient,
ipykernel of this Python), against a live `sweeps serve` named by SWEEPS_SERVER and SWEEPS_TOKEN."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import ROOT, live_server, token_for

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "your_model.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        for kind in ("text/plain", "text/markdown"):
            parts.append(out.get("data", {}).get(kind, ""))
    return "\n".join(parts)


def test_the_notebook_is_saved_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_notebook_runs_against_a_live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with live_server(tmp_path, workers=2) as (base, env):
        monkeypatch.setenv("SWEEPS_SERVER", base)  # the kernel inherits this process's environment
        monkeypatch.setenv("SWEEPS_TOKEN", token_for(env))
        # This checkout's stability_sweeps, whatever is installed; the kernel starts where the notebook is.
        paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
        started = time.monotonic()
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
        elapsed = time.monotonic() - started
    texts = [_text(c) for c in nb.cells if c.cell_type == "code"]
    everything = "\n".join(texts)
    assert "completed: 18/18 runs" in everything, everything[-3000:]
    assert "# Diagnosis of sweep 1: floor_lstm" in everything  # the report rendered as Markdown
    assert f"{base}/sweeps/1" in texts[-1]
    print(f"notebook executed in {elapsed:.0f} s")
