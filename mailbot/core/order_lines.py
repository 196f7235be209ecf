"""Where a number stands in its text: its line, the line above, its table cell, the words nearby.

Judging an order-number candidate looks at its line, the heading above it and the lexicon words
around it. Each of those used to be found by scanning the text again for every candidate, so a
line listing 8,000 numbers was scanned 8,000 times (minutes for 160 KB). `TextLines` finds each
fact once per line and answers every candidate from that, by binary search where it must look
something up: judging a text is linear in its length however many numbers it holds.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from mailbot.core.phrases import Hit

_NON_SPACE = re.compile(r"\S")
_SPACE = re.compile(r"\s")
_SEPARATORS = {"|": re.compile(r"\|"), "\t": re.compile(r"\t"), " ": re.compile(r" {2,}")}


class WordsNear:
    """Lexicon hits of one region, sorted by start, with the look-ups judging needs."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self._starts = [h.start for h in hits]
        self._before: dict[tuple[int, int], Hit | None] = {}

    def before(self, lo: int, hi: int) -> Hit | None:
        """The phrase ending closest before `hi` that starts at or after `lo` (and ends by `hi`)."""
        key = (lo, hi)
        if key in self._before:
            return self._before[key]
        best: Hit | None = None
        for i in range(bisect_left(self._starts, lo), bisect_left(self._starts, hi)):
            hit = self.hits[i]
            if hit.end <= hi and (
                best is None or hit.end > best.end or (hit.end == best.end and hit.start < best.start)
            ):
                best = hit
        self._before[key] = best
        return best

    def after(self, lo: int, hi: int) -> Hit | None:
        """The first phrase starting in [lo, hi)."""
        i = bisect_left(self._starts, lo)
        return self.hits[i] if i < len(self.hits) and self.hits[i].start < hi else None


class TextLines:
    """One source text, split into lines once; every per-line fact is computed on first use."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._breaks = [m.start() for m in re.finditer("\n", text)]
        self._previous: dict[int, int] = {}
        self._cells: dict[int, list[tuple[int, int]]] = {}
        self._first_text: dict[int, int] = {}
        self._slices: dict[int, str] = {}

    def line_start(self, position: int) -> int:
        i = bisect_left(self._breaks, position)
        return self._breaks[i - 1] + 1 if i else 0

    def line_end(self, position: int) -> int:
        """End of the line holding `position` (the next line break at or after it)."""
        i = bisect_left(self._breaks, position)
        return self._breaks[i] if i < len(self._breaks) else len(self.text)

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """From the start of the line of `start` to the end of the line of `end`."""
        return self.line_start(start), self.line_end(end)

    def line(self, line_start: int) -> str:
        """The text of the line starting at `line_start`, sliced once."""
        found = self._slices.get(line_start)
        if found is None:
            found = self.text[line_start : self.line_end(line_start)]
            self._slices[line_start] = found
        return found

    def previous_line_start(self, line_start: int) -> int:
        """Start of the nearest non-empty line above the line starting at `line_start`."""
        found = self._previous.get(line_start)
        if found is None:
            i = bisect_right(self._breaks, line_start - 1) - 1  # the break ending the line above
            while i > 0 and self._breaks[i - 1] == self._breaks[i] - 1:
                i -= 1  # skip empty lines
            found = self._breaks[i - 1] + 1 if i > 0 else 0
            if line_start <= 0 or i < 0:
                found = 0
            self._previous[line_start] = found
        return found

    def cells(self, line_start: int) -> list[tuple[int, int]]:
        """Cell spans of a table row (offsets in the line): split at "|" or tabs, else at runs of
        two or more spaces."""
        found = self._cells.get(line_start)
        if found is None:
            found = split_cells(self.line(line_start))
            self._cells[line_start] = found
        return found

    def blank_at_or_after(self, position: int, limit: int) -> int:
        """The first white space at or after `position` (no word crosses it), else `limit`."""
        if position >= limit:
            return limit
        match = _SPACE.search(self.text, position, limit)
        return match.start() if match else limit

    def blank_between(self, start: int, end: int) -> bool:
        """Is text[start:end] only white space? (the first non-space after `start` is remembered)"""
        first = self._first_text.get(start)
        if first is None:
            match = _NON_SPACE.search(self.text, start)
            first = match.start() if match else len(self.text)
            self._first_text[start] = first
        return first >= end

    def column_heading(
        self, heading_start: int, line_start: int, position: int
    ) -> tuple[int, int, int | None]:
        """Where the heading of a number at `position` stands in the line above, and where the
        number's table cell starts. In a table that is the heading of the number's own column
        ("Trade Assurance order | PO No." above "9120 4471 8836 0052 | 2026-PO-55810"); otherwise
        the whole line above (and no cell)."""
        heading_end = max(heading_start, line_start - 1)
        whole = (heading_start, heading_end, None)
        if heading_start >= line_start:
            return whole
        head_cells, row_cells = self.cells(heading_start), self.cells(line_start)
        if len(head_cells) < 2 or len(row_cells) < 2:
            return whole
        column = position - line_start
        index = _cell_at(row_cells, column)
        if index is None:
            return whole
        heading = self.line(heading_start)
        if "|" in heading or "\t" in heading:
            if len(head_cells) != len(row_cells):
                return whole
            start, end = head_cells[index]
        else:
            # Aligned with spaces: the heading cell that stands above the number's first digit.
            above = _cell_at(head_cells, column)
            if above is None:
                return whole
            start, end = head_cells[above]
        return heading_start + start, heading_start + end, line_start + row_cells[index][0]


def split_cells(line: str) -> list[tuple[int, int]]:
    kind = "|" if "|" in line else "\t" if "\t" in line else " "
    spans, start = [], 0
    for match in _SEPARATORS[kind].finditer(line):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(line)))
    return [(s, e) for s, e in spans if line[s:e].strip()] if kind == " " else spans


def _cell_at(cells: list[tuple[int, int]], column: int) -> int | None:
    """Index of the cell with start <= column < end (cells are sorted and do not overlap)."""
    lo, hi = 0, len(cells)
    while lo < hi:
        mid = (lo + hi) // 2
        if cells[mid][0] <= column:
            lo = mid + 1
        else:
            hi = mid
    if lo and column < cells[lo - 1][1]:
        return lo - 1
    return None
