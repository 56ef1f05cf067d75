"""A progress bar that works in a terminal and in Jupyter: tqdm.auto when tqdm is installed
(a widget in a notebook, a text bar elsewhere), else one line rewritten with a carriage return."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Bar(Protocol):
    def show(self, done: int, total: int, state: str) -> None: ...

    def close(self) -> None: ...


class _TqdmBar:
    def __init__(self, label: str) -> None:
        self._tqdm = _tqdm_class()
        self._label = label
        self._bar: Any = None  # made at the first show, once the total is known

    def show(self, done: int, total: int, state: str) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=total, desc=self._label, unit="run", dynamic_ncols=True)
        self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(state, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _tqdm_class() -> Any:
    """tqdm.auto's widget needs ipywidgets (it warns and falls back without it); the text bar
    works in a terminal and in a notebook's output alike."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


class _LineBar:
    """``sweep 3: 12/40 runs (30%), running`` rewritten in place on stderr."""

    def __init__(self, label: str) -> None:
        self._label = label

    def show(self, done: int, total: int, state: str) -> None:
        share = f" ({100 * done / total:.0f}%)" if total else ""
        sys.stderr.write(f"\r{self._label}: {done}/{total} runs{share}, {state}   ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def progress_bar(label: str) -> Bar:
    try:
        return _TqdmBar(label)
    except ImportError:
        return _LineBar(label)


class NoBar:
    def show(self, done: int, total: int, state: str) -> None:
        pass

    def close(self) -> None:
        pass
