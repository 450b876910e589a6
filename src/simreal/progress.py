"""The one progress bar of every long job (render, import, validate, predict, evaluate, refine, translate).

A rich bar on stderr, so that stdout stays for results: label, bar, done/total, elapsed, time left and,
when asked, a throughput column. Jobs take ``progress: bool`` and open the bar with :func:`progress_bar`;
a disabled bar draws nothing and its methods do nothing, so the job's code has no ``if`` around it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator


class ProgressBar:
    """What :func:`progress_bar` yields: move the bar on with :meth:`advance` or :meth:`update`."""

    def __init__(self, bar: Any, task: Any, completed: int, unit: str | None):
        self._bar, self._task, self._unit = bar, task, unit
        self._start, self._first = time.perf_counter(), completed

    def advance(self, n: int = 1, **fields: Any) -> None:
        """``n`` more items done (``fields``: values of extra columns, e.g. ``losses=...``)."""
        self._bar.update(self._task, advance=n, **fields)
        self._rate()

    def update(self, done: int, total: int | None = None, **fields: Any) -> None:
        """``done`` items done in all (of ``total``, when it is known only now)."""
        extra = {"total": total or None} if total is not None else {}
        self._bar.update(self._task, completed=done, **extra, **fields)
        self._rate()

    def _rate(self) -> None:
        if self._unit is None:
            return
        new = self._bar.tasks[0].completed - self._first  # items of this run: resumed ones were not done now
        rate = new / max(time.perf_counter() - self._start, 1e-9)
        # A slow job reads better as seconds per item.
        text = f"{rate:.1f} {self._unit}/s" if rate >= 1 else (f"{1 / rate:.1f} s/{self._unit}" if rate > 0 else "")
        self._bar.update(self._task, rate=text)


@contextmanager
def progress_bar(label: str, total: int | None = None, *, enabled: bool = True, completed: int = 0,
                 unit: str | None = None, fields: tuple[str, ...] = (), terminal_only: bool = False,
                 transient: bool = False) -> Iterator[ProgressBar]:
    """Open a progress bar on stderr; yields a :class:`ProgressBar`.

    Args:
        label: what is being done ("rendering", "evaluating depth").
        total: number of items (``None``: unknown until :meth:`ProgressBar.update` says it).
        enabled: ``False`` draws nothing (a library call's default).
        completed: items already done before this run (a resumed job).
        unit: show the throughput of this run as "x.x <unit>/s", or "x.x s/<unit>" when slower than one a
            second (``None``: no throughput column).
        fields: names of extra text columns shown after the bar (set through ``advance(..., name=value)``).
        terminal_only: draw only when stderr is a terminal (in a log or a pipe a bar is noise, and it would
            put a blank line before an error message).
        transient: clear the bar when done.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    columns: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TimeRemainingColumn()]
    if unit is not None:
        columns.insert(3, TextColumn("{task.fields[rate]}"))
    columns += [TextColumn(f"{{task.fields[{name}]}}") for name in fields]
    show = enabled and (console.is_terminal or not terminal_only)
    with Progress(*columns, console=console, transient=transient, disable=not show) as bar:
        task = bar.add_task(label, total=total, completed=completed, rate="", **{name: "" for name in fields})
        yield ProgressBar(bar, task, completed, unit)

