"""Progress bars for long commands on a terminal, and nothing at all when the output is not one.

A first `poll --once` on a large backlog, `rules replay`, `eval` and `quarantine reprocess --all`
can run for minutes; on a terminal they show a bar with counts and the time left (click's progress
bar: click is what the command line is built on, so no other library is needed). The bar goes to
stderr, like the logs, so stdout stays the report a script reads; when stderr is not a terminal
(a pipe, a file, systemd's journal) no bar is made and the services get no callback, so the output
is exactly what it was. Log lines written while a bar is shown go above it: the bar's line is cleared
first and drawn again after.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, TextIO

import click

from mailbot.services.progress import Progress

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

_CLEAR_LINE = "\r\x1b[2K"


class TerminalBar:
    """A `Progress` that draws click's bar on `stream`, opened when the total is first known."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.bar: ProgressBar[int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=total,
                label=self.label,
                file=self.stream,
                show_pos=True,
                show_percent=True,
                show_eta=False,  # drawn by `_time_left`, with a word saying what the figure is
                item_show_func=self._time_left,
            )
            self.bar.__enter__()
        self.bar.length = total
        if done > self.bar.pos:
            self.bar.update(done - self.bar.pos)

    def _time_left(self, _item: int | None) -> str | None:
        bar = self.bar
        if bar is None or not bar.eta_known or bar.finished:
            return None  # click knows the pace after a second of work
        return f"{bar.format_eta()} left"

    def redraw(self) -> None:
        if self.bar is not None and not self.bar.finished:
            self.bar._last_line = None  # click draws only a changed line; a log line just replaced it
            self.bar.render_progress()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None


class _AboveTheBar:
    """The stream a log handler writes to while a bar is shown: each line goes above the bar."""

    def __init__(self, stream: TextIO, bar: TerminalBar) -> None:
        self.stream = stream
        self.bar = bar

    def write(self, text: str) -> int:
        shown = self.bar.bar is not None
        if shown:
            self.stream.write(_CLEAR_LINE)
        written = self.stream.write(text)
        if shown and text.endswith("\n"):
            self.bar.redraw()
        return written

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def progress_bar(label: str, stream: TextIO | None = None) -> Iterator[Progress | None]:
    """A `Progress` for a service on a terminal (stderr by default), or None when it is not one."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        yield None
        return
    bar = TerminalBar(label, out)
    with ExitStack() as restore:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is out:
                handler.setStream(_AboveTheBar(out, bar))
                restore.callback(handler.setStream, out)
        try:
            yield bar
        finally:
            bar.close()
