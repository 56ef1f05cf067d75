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
        from tqdm.auto import tqdm

        self._bar: Any = tqdm(total=None, desc=label, unit="run", dynamic_ncols=True)

    def show(self, done: int, total: int, state: str) -> None:
        self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(state, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


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
