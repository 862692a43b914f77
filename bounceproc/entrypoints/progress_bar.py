"""Progress bars for the long commands (`import`, `reprocess`, `suppressions import`), on stderr.

Adapter layer (CLI). A bar is drawn only when stderr is a terminal and the command was not asked
to be quiet; otherwise `progress_bar` yields None and the command writes exactly what it wrote
before (scripts parse it). `rich` is imported only when a bar is drawn. Lines a command prints
on stderr while its bar is shown appear above the bar.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

# update(completed, text=None): move the bar to `completed` (of the total), and change the text
# before it (for example the file being read and its line count) when `text` is given.
Update = Callable[..., None]


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):     # replaced or closed stderr
        return False


@contextlib.contextmanager
def progress_bar(text: str, total: int | None, unit: str, quiet: bool = False) -> Iterator[Update | None]:
    """A bar counting `unit` ("bytes", "messages", "rows") up to `total` (None: not known, the bar
    pulses), or None when stderr is not a terminal or `quiet`."""
    if quiet or not stderr_is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    amount = [DownloadColumn()] if unit == "bytes" else [MofNCompleteColumn(), TextColumn(unit)]
    with Progress(TextColumn("{task.description}"), BarColumn(), *amount, TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr), redirect_stdout=False) as progress:
        task = progress.add_task(text, total=total)

        def update(completed: int, text: str | None = None) -> None:
            progress.update(task, completed=completed, **({"description": text} if text else {}))

        yield update
        if total is None:
            progress.update(task, total=progress.tasks[0].completed)
