"""Judging one candidate: is it an order number, or a phone, an amount, a code, a timestamp?

The same digits are an order after "order" and a phone number after "tel": the nearest lexicon
word before the number decides (or after it, within the clause; or a column heading above it).
Characters glued to the number (letters, "+", "$", "_") and the supervisors' look-alike patterns
turn it into a decoy before any word is consulted.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from mailbot.core.order_config import OrderConfig, is_spaced_letter
from mailbot.core.order_lines import TextLines, WordsNear
from mailbot.core.order_scan import Candidate
from mailbot.core.phrases import Hit

_GLUED_LETTERS = re.compile(r"([^\W\d_]+)-?$")
# Up to this many letters joined to a number by a dash are the letter part of a code ("INV-…").
_MAX_CODE_LETTERS = 5
# "+86 …", "0086 …". An opening bracket is not one: "my order (1625…)" is how people write.
_PHONE_PREFIX = re.compile(r"(?:\+|\b00)\s*$")
_NUMBER_BEFORE = re.compile(r"[0-9][.,]$")
# Characters that join a number into a token (MIME boundaries, codes). File names are exempt:
# "Report_2696166302883.pdf" is how an order number appears in an attachment name.
_ID_GLUE = frozenset("_=\\$%&")
# A word after a number only describes it ("… nolu sipariş") within the same clause.
_CLAUSE_BREAK = re.compile(r"[^\w\s]|[0-9]")
_AMOUNT_BEFORE = re.compile(r"(?i)(?:[$€£¥₹₽]|\b(?:usd|eur|rmb|cny|gbp|jpy|inr|rub|aed|sar|idr|vnd))\s*$")
_AMOUNT_AFTER = re.compile(r"(?i)^(?:[.,][0-9]{1,2}(?![0-9])|\s*(?:usd|eur|rmb|cny|元|€|\$))")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    score: float
    reasons: tuple[str, ...]
    has_context: bool = False
    # Rejected because the mail calls it something else (a word or pattern next to it says
    # phone, bank account, confirmation number…): then it is no order anywhere in the mail.
    named_otherwise: bool = False


# Words are searched this far past the last candidate that needs them (no phrase is longer), and
# at first this much further, so the next candidates on a long line find them already there.
_PHRASE_REACH = 256
_FIRST_REACH = 8192


class Scan:
    """One source text being judged: its lines, and per line the look-alike patterns' matches
    and the lexicon words, each found once however many numbers the line holds."""

    def __init__(self, text: str, config: OrderConfig) -> None:
        self.lines = TextLines(text)
        self.config = config
        self._decoys: dict[int, list[tuple[str, list[int], list[int]]]] = {}
        self._near: dict[tuple[int, int], tuple[int, WordsNear]] = {}  # region -> (searched up to, words)

    def decoy_at(self, line_start: int, position: int) -> str | None:
        """The name of the first look-alike pattern with a match on the line covering `position`."""
        spans = self._decoys.get(line_start)
        if spans is None:
            line = self.lines.line(line_start)
            spans = []
            for name, pattern in self.config.matchers.patterns:
                found = [(m.start(), m.end()) for m in pattern.finditer(line)]
                spans.append((name, [s for s, _ in found], [e for _, e in found]))
            self._decoys[line_start] = spans
        column = position - line_start
        for name, starts, ends in spans:
            i = bisect_right(starts, column) - 1
            if i >= 0 and column < ends[i]:
                return name
        return None

    def near(self, c: Candidate) -> WordsNear:
        """Lexicon words on the candidate's line and the line above (all that judge looks at).

        The words are found from the start of that region up to a little past the candidate,
        and further (twice as far each time) only when a later candidate needs it: a megabyte
        line whose first thousand numbers are judged is not searched to its end.
        """
        line_start, line_end = self.lines.bounds(c.start, c.end)
        region = (self.lines.previous_line_start(line_start) if line_start else 0, line_end)
        need = min(region[1], c.end + self.config.window_after + _PHRASE_REACH)
        known = self._near.get(region)
        if known is None or known[0] < need:
            reach = max(need + _FIRST_REACH, 2 * known[0] - region[0] if known else 0)
            cut = self.lines.blank_at_or_after(reach, region[1])
            words = self.config.matchers.keywords.find(self.lines.text[region[0] : cut], region[0])
            known = (cut, WordsNear(words))
            self._near[region] = known
        return known[1]


def _named(hit: Hit) -> str:
    return f"{hit.phrase.text!r} ({hit.phrase.language})"


def judge(c: Candidate, scan: Scan, words: WordsNear | None) -> Verdict:
    config = scan.config
    n = len(c.digits)
    text = c.text
    if n < config.min_digits:
        return Verdict(False, 0.0, (f"{n} digits: shorter than an order number ({config.min_digits})",))
    if n > config.max_digits:
        return Verdict(False, 0.0, (f"{n} digits: longer than an order number ({config.max_digits})",))
    line_start, line_end = scan.lines.bounds(c.start, c.end)
    window_start = max(line_start, c.start - config.window_before)
    before = text[window_start : c.start]
    after = text[c.end : min(line_end, c.end + config.window_after)]
    reasons: list[str] = []
    score = 1.0

    if c.source == "url":
        reasons.append("order id in a link to the order page")
        score += 1.0
    else:
        shape = _shape_decoy(c, before, after, config, reasons)
        if shape is not None:
            return Verdict(False, 0.0, (shape,))
        if reasons:
            score += 0.5
        decoy = scan.decoy_at(line_start, c.start)
        if decoy is not None:
            return Verdict(False, 0.0, (f"looks like {decoy}",), named_otherwise=True)

    has_context = c.source == "url"
    if c.source != "url" and words is not None:
        near = words.before(window_start, c.start)
        following = words.after(c.end, c.end + len(after))
        if near is not None and near.phrase.tag != "order":
            return Verdict(
                False, 0.0, (f"after {_named(near)}: a {near.phrase.tag} number",), named_otherwise=True
            )
        if near is not None:
            reasons.append(f"after {_named(near)}")
            score += 1.0
            has_context = True
        elif (
            following is not None
            and following.phrase.tag == "order"
            and not _CLAUSE_BREAK.search(text[c.end : following.start])
        ):
            reasons.append(f"before {_named(following)}")
            score += 0.8
            has_context = True
        else:
            # Nothing on the line (or in its table cell) before it: a value under a heading.
            previous_start = scan.lines.previous_line_start(line_start) if line_start else 0
            lo, hi, cell_start = scan.lines.column_heading(previous_start, line_start, c.start)
            if cell_start is not None:
                alone = scan.lines.blank_between(cell_start, c.start)
            else:
                alone = not before.strip()
            heading = words.before(lo, hi) if alone or line_start == window_start else None
            if heading is not None and heading.phrase.tag == "order":
                reasons.append(f"under the heading {_named(heading)}")
                score += 0.5
                has_context = True
            elif heading is not None and alone:
                why = f"under {_named(heading)}: a {heading.phrase.tag} number"
                return Verdict(False, 0.0, (why,), named_otherwise=True)

    if not has_context:
        for name, pattern in config.matchers.digit_patterns:
            if pattern.fullmatch(c.digits):
                return Verdict(False, 0.0, (f"the digits look like {name}",))
    if c.written != c.digits:
        reasons.append(f"digits joined from {c.written.strip()!r}")
    if config.typical_min <= n <= config.typical_max:
        score += 0.1
    return Verdict(True, score, tuple(reasons), has_context)


def _shape_decoy(
    c: Candidate, before: str, after: str, config: OrderConfig, reasons: list[str]
) -> str | None:
    """Why the characters glued to the number make it something else; None when they do not."""
    if before and not before[-1].isspace():
        glued = _GLUED_LETTERS.search(before)
        if glued and is_spaced_letter(glued.group(1)[-1], config.scripts):
            letters = glued.group(1)
            if letters.lower() in config.prefixes:
                reasons.append(f"written with the prefix {letters!r}")
            elif before.endswith(letters):
                return f"attached to the letters {letters!r}: another kind of id"
            elif len(letters) <= _MAX_CODE_LETTERS and letters.lower() not in config.matchers.context_words:
                # "INS-2026-0418-7751", "INV-20260311-0087": a code with its own letters, not an order.
                return f"written as the code {letters + '-'!r}: another kind of id"
    if after and is_spaced_letter(after[0], config.scripts):
        return "followed directly by letters: another kind of id"
    if before[-1:] in _ID_GLUE and c.source != "attachment_name":
        # "boundary=_1337625986146380": part of a token, not something a person wrote.
        return f"glued to {before[-1]!r}: part of a longer identifier"
    if before.endswith(")(") or after.startswith(")("):
        # "RULEID:(100000700101)(100105000095)": bracketed codes back to back are machine output.
        return "one of a run of bracketed codes (machine-written)"
    if _PHONE_PREFIX.search(before) or (c.written.startswith("00") and " " in c.written):
        return "a phone number (international prefix)"
    if _AMOUNT_BEFORE.search(before) or _AMOUNT_AFTER.match(after):
        return "an amount of money"
    if (after[:1] in {".", ","} and after[1:2].isdigit()) or _NUMBER_BEFORE.search(before):
        return "part of a longer number with separators (amount, tax id)"
    return None
