"""How long work tells its caller how far it has got, without knowing who is watching.

Services stay free of any terminal: a long run (a first poll of a large backlog, a replay, an
evaluation, reprocessing the quarantine) takes an optional `Progress` and calls it with how many
items are done out of how many. The command line draws a bar from it on a terminal; the worker and
piped output pass nothing, so their output is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

#: `progress(done, total)`: `done` items of `total` are finished. Called with (0, total) when the
#: total is known, then after each item (or batch); the last call has done == total.
Progress = Callable[[int, int], None]


class Steps:
    """Counts finished items towards a known total and tells a `Progress`, if there is one."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        if progress is not None and total:
            progress(0, total)

    def advance(self, items: int = 1) -> None:
        self.done = min(self.total, self.done + items)
        if self.progress is not None and self.total:
            self.progress(self.done, self.total)

    def finish(self) -> None:
        """All done, including items that turned out to need no work (an expunged UID, say)."""
        if self.done < self.total:
            self.advance(self.total - self.done)
