"""The progress bar: tqdm.auto when installed, else one line rewritten in place."""

from __future__ import annotations

import sys

import pytest

from stability_sweeps import progress


def test_tqdm_bar_when_tqdm_is_installed(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress.progress_bar("sweep 7")
    bar.show(3, 8, "running")
    bar.show(8, 8, "completed")
    bar.close()
    err = capsys.readouterr().err
    assert "sweep 7" in err and "8/8" in err and "completed" in err


def test_line_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    bar = progress.progress_bar("sweep 7")
    bar.show(0, 0, "queued")
    bar.show(2, 8, "running")
    bar.close()
    assert capsys.readouterr().err == "\rsweep 7: 0/0 runs, queued   \rsweep 7: 2/8 runs (25%), running   \n"
