"""How the ``sweeps`` commands print: tables that fold rather than cut, and errors in one line."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
# soft_wrap: an error is one line, however narrow the terminal (scripts grep it).
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> NoReturn:
    # escape: the message quotes user input and the API's text, which may hold [brackets].
    err.print(f"[red]error:[/red] {escape(' '.join(message.split()))}")
    raise typer.Exit(2)


def folding_table(*headers: str) -> Table:
    """A table whose cells wrap rather than end in an ellipsis: on a narrow terminal a sweep's name
    is folded over lines, never cut (names and free-text columns get the spare width first)."""
    table = Table()
    for h in headers:
        table.add_column(h, overflow="fold", min_width=16 if h == "name" else None)
    return table
