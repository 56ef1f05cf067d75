"""Entry-point workloads: discovered from an installed distribution's metadata."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.core.errors import InvalidSpec, NotFound
from workers.workloads.registry import build_entry_point, list_entry_points

PLUGIN = """
from workers.workloads.presets import LeastSquares

def make(params):
    return LeastSquares({"n": params.get("n", 8), "d": 2})

NOT_CALLABLE = 3

def broken(params):
    return object()
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "sweeps_plugin_demo.py").write_text(PLUGIN)
    dist = tmp_path / "sweeps_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweeps-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[stability_sweeps.workloads]\n"
        "demo = sweeps_plugin_demo:make\n"
        "not_callable = sweeps_plugin_demo:NOT_CALLABLE\n"
        "broken = sweeps_plugin_demo:broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("sweeps_plugin_demo", None)


def test_entry_points_are_listed_and_built(plugin: None) -> None:
    assert {"demo", "broken", "not_callable"} <= set(list_entry_points())
    w = build_entry_point("demo", {"n": 6})
    assert w.name == "least_squares" and w.dataset().n_train == 6


def test_entry_point_errors(plugin: None) -> None:
    with pytest.raises(NotFound, match="no workload entry point 'missing'"):
        build_entry_point("missing", {})
    with pytest.raises(InvalidSpec, match="not callable"):
        build_entry_point("not_callable", {})
    with pytest.raises(InvalidSpec, match="lacks name"):
        build_entry_point("broken", {})
