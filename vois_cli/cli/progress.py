"""Rich progress for long library calls: a bar on a terminal, silence in logs and CI."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def interactive() -> bool:
    """True when stderr is a terminal and we are not under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[..., None]]:
    """Yield a callback `report(done, total, **info)` that the library calls as work advances.

    `info` (e.g. loss=0.42) is shown beside the bar. Off a terminal the callback does nothing.
    """
    if not interactive():
        yield lambda done, total, **info: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=None, info="")

        def report(done: int, total: int, **info: float) -> None:
            text = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
            )
            bar.update(task, completed=done, total=total, info=text)

        yield report
