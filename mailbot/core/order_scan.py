"""Digit chains in one source text: the candidates for order numbers, before any judging.

Buyers write order numbers in groups ("1625 3498 7612 345"), wrapped over lines, inside links
and next to e-mail addresses. This module finds every run of digits that together may form one
number, masks what is not text (URLs, addresses), and keeps within the mail's budget of numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.core.order_config import OrderConfig

NON_DIGIT = re.compile(r"[^0-9]")
# "2. " or "2) " after a group that opens a line: the number of a list item.
_ENUMERATOR = re.compile(r"[.)][ \t]")
_LIST_ITEM = re.compile(r"[ \t>]*[0-9]{1,2}[.)][ \t]")
# Across a line break; or on one line (spaces, a dash) between two pieces too short to be orders
# ("3219748087 8451515": a long number typed in two odd pieces, or a soft line break undone).
_WEAK_GAP = re.compile(r"(?:[ \t]*\n[ \t>]*|[ \t]+|[ \t]?[-‐‑–—][ \t]?)")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"]+")
# Starts only where an address can start, so a long run of word characters without a domain
# is tried once, not once per character.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Candidate:
    digits: str
    written: str
    start: int
    end: int
    source: str
    text: str  # the normalised source text the offsets refer to


class Budget:
    """How many more numbers of an order number's length this mail may have judged."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.limit = limit
        self.reasons = limit  # rejected numbers kept with their reason


def chains(text: str, config: OrderConfig) -> list[tuple[int, int, int]]:
    """Spans of digit groups that together may form one number, with their digit counts.

    Groups joined by one space or dash form a chain when every group is short (≤ max_group).
    Across a line break, chains merge when one side is a fragment shorter than an order number
    (hard wrapping); across spaces or a dash on one line only when both are (a table keeps its
    columns, and a complete number keeps the quantity after it apart).
    """
    # 1. strong chains, found by one regular expression
    strong = [
        (m.start(), m.end(), m.end() - m.start() if m.lastgroup == "one" else _digit_count(m.group()))
        for m in config.matchers.strong_chain.finditer(text)
    ]
    # 2. weak merges
    spans: list[tuple[int, int, int]] = []  # start, end, digit count
    least, most = config.min_digits, config.max_digits
    for start, end, count in strong:
        if spans:
            p_start, p_end, p_count = spans[-1]
            # Cheap tests first: two complete numbers, or two too long together, never merge.
            if (p_count < least or count < least) and p_count + count <= most and max(p_count, count) >= 3:
                gap = text[p_end:start]
                wrapped = "\n" in gap
                fragment = wrapped or (p_count < least and count < least)
                if (
                    fragment
                    and _WEAK_GAP.fullmatch(gap)
                    and not (wrapped and _starts_list_item(text, start, end, p_start, p_count, config))
                ):
                    spans[-1] = (p_start, end, p_count + count)
                    continue
        spans.append((start, end, count))
    return spans


def _digit_count(text: str) -> int:
    return len(NON_DIGIT.sub("", text))


def _starts_list_item(
    text: str, start: int, end: int, p_start: int, p_count: int, config: OrderConfig
) -> bool:
    """Is the group at `start` the number of a list item ("2. PO 77124 / TA …") rather than the
    wrapped end of the number above? It is when the line above is an item of the same list, or
    when the number above is already complete."""
    if end - start > 2 or not _ENUMERATOR.match(text, end):
        return False
    above = text.rfind("\n", 0, p_start) + 1
    return _LIST_ITEM.match(text, above) is not None or p_count >= config.min_digits


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def candidates(
    text: str, source: str, config: OrderConfig, budget: Budget
) -> tuple[list[Candidate], str, int]:
    """Digit chains in one source text (URLs and e-mail addresses masked), the text scanned, and
    how many numbers of an order's length were left unjudged because the mail's budget ran out
    (those are only counted, not built)."""
    found: list[Candidate] = []
    skipped = 0

    def admitted(count: int) -> bool:
        nonlocal skipped
        if not config.min_digits <= count <= config.max_digits:
            return budget.reasons > 0  # rejected at once by its length: worth building for its reason
        if budget.left <= 0:
            skipped += 1
            return False
        budget.left -= 1
        return True

    for url in _URL.finditer(text) if ("http" in text or "www." in text) else ():
        for param in config.matchers.url.finditer(url.group(0)):
            digits = NON_DIGIT.sub("", param.group(1))
            start = url.start() + param.start(1)
            if admitted(len(digits)):
                found.append(
                    Candidate(digits, param.group(1), start, start + len(param.group(1)), "url", text)
                )
    scanned = _mask(text, _URL) if ("http" in text or "www." in text) else text
    scanned = _mask(scanned, _EMAIL) if "@" in scanned else scanned
    shortest = min(config.min_digits, 9)  # shorter runs can be neither orders nor worth a reason
    for start, end, count in chains(scanned, config):
        if count < shortest or not admitted(count):
            continue
        written = scanned[start:end]
        digits = written if count == end - start else NON_DIGIT.sub("", written)
        found.append(Candidate(digits, written, start, end, source, scanned))
    return found, scanned, skipped
