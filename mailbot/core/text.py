"""What a person wrote now, apart from what they quoted, forwarded or signed.

A buyer's order number, language and request live in the new text; the same digits in an old
quoted reply or in a signature mean something else. This module turns a body (plain text, or HTML
through inscriptis) into four parts: new text, quoted history, signature and forwarded content.

The parts live beside it: html_text (HTML conversion with quote containers fenced), flowed
(format=flowed), quote_markers (the reply and forward conventions of mail clients in many
languages) and signatures ("-- ", mobile footers, sign-off blocks). This module walks the lines.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailbot.core.flowed import unflow
from mailbot.core.html_text import (
    MAX_LAYOUT_HTML,
    QUOTE_END,
    QUOTE_START,
    SENTINELS,
    SIGNATURE_START,
    html_to_text,
    strip_sentinels,
)
from mailbot.core.quote_markers import (
    FORWARD_MARKER,
    MAX_LINES_SPLIT,
    ORIGINAL_MARKER,
    RULE_LINE,
    attribution_length,
    is_header_block,
    is_quote_line,
    next_content,
    region_is_forward,
    reply_parser_cut,
)
from mailbot.core.signatures import find_signature_start

__all__ = [
    "MAX_LAYOUT_HTML",
    "MAX_LINES_SPLIT",
    "TextSplit",
    "html_to_text",
    "normalise",
    "split_message",
    "strip_sentinels",
    "unflow",
]

# Invisible characters, and NUL, which no text means and PostgreSQL refuses to store.
# (A regex, not str.translate, which looks up a table for every character of a non-ASCII text.)
_ZERO_WIDTH = re.compile("[\x00\u200b\u200c\u200d\u2060\ufeff\u00ad]")


@dataclass(frozen=True)
class TextSplit:
    """One body cut into what was written now and what was carried along."""

    new: str
    quoted: str
    signature: str
    forwarded: str


def normalise(text: str) -> str:
    """NFKC (full-width digits and colons, NBSP) and `\\n` line ends, so later regexes see one form."""
    text = _ZERO_WIDTH.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = unicodedata.normalize("NFKC", text)
    return "\n".join(line.rstrip() for line in text.split("\n"))


def split_message(text: str, *, forwarded: bool = False) -> TextSplit:
    """Cut a (normalised or not) body into new text, quoted history, signature and forwarded text.

    `forwarded`: the subject says the mail forwards something ("Fwd:", see core/subjects.py), so a
    mail client's header block in it starts forwarded content rather than quoted history."""
    text = normalise(text)
    lines = text.split("\n")
    n = len(lines)
    kinds = ["new"] * n
    forward_subject = forwarded
    signature_start: int | None = None
    found_cut = False

    def claim_attribution_before(index: int) -> None:
        # "On ... wrote:" (up to three lines) directly above a quote belongs to the quote.
        j = index - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        for start in range(max(0, j - 2), j + 1):
            if (
                kinds[start] == "new"
                and attribution_length(lines, start)
                and start + attribution_length(lines, start) - 1 == j
            ):
                for k in range(start, j + 1):
                    kinds[k] = "quoted"
                return

    i = 0
    while i < min(n, MAX_LINES_SPLIT):
        stripped = lines[i].strip()
        if not stripped:
            i += 1  # an empty line starts nothing and is part of what surrounds it
            continue
        if stripped == QUOTE_START:
            depth, j = 1, i + 1
            while j < n and depth:
                if lines[j].strip() == QUOTE_START:
                    depth += 1
                elif lines[j].strip() == QUOTE_END:
                    depth -= 1
                j += 1
            kind = "forwarded" if region_is_forward(lines[i + 1 : j], forward_subject) else "quoted"
            for k in range(i, j):
                kinds[k] = kind
            claim_attribution_before(i)
            found_cut = True
            i = j
            continue
        if stripped in (QUOTE_END, SIGNATURE_START):
            kinds[i] = "marker"
            if stripped == SIGNATURE_START and signature_start is None:
                signature_start = i
            i += 1
            continue
        if is_quote_line(lines[i]):
            kinds[i] = "quoted"
            claim_attribution_before(i)
            found_cut = True
            i += 1
            continue
        cut_kind: str | None = None
        if FORWARD_MARKER.match(lines[i]):
            cut_kind = "forwarded"
        elif ORIGINAL_MARKER.match(lines[i]) or (
            RULE_LINE.match(lines[i])
            and (nxt := next_content(lines, i + 1)) < n
            and (is_header_block(lines, nxt) or FORWARD_MARKER.match(lines[nxt]))
        ):
            nxt = next_content(lines, i + 1)
            is_forward = forward_subject or (nxt < n and bool(FORWARD_MARKER.match(lines[nxt])))
            cut_kind = "forwarded" if is_forward else "quoted"
        elif is_header_block(lines, i):
            cut_kind = "forwarded" if forward_subject else "quoted"
        else:
            length = attribution_length(lines, i)
            if length:
                after = next_content(lines, i + length)
                if after < n and (is_quote_line(lines[after]) or lines[after].strip() == QUOTE_START):
                    # Bottom-posting or interleaving: only the attribution and the ">" block are quoted.
                    for k in range(i, i + length):
                        kinds[k] = "quoted"
                    found_cut = True
                    i += length
                    continue
                cut_kind = "quoted"
        if cut_kind is not None:
            for k in range(i, n):
                kinds[k] = cut_kind
            found_cut = True
            break
        i += 1

    if i >= MAX_LINES_SPLIT:
        # Past the limit only the cheap sign is read: a ">" line is still quoted history.
        for k in range(i, n):
            if kinds[k] == "new" and is_quote_line(lines[k]):
                kinds[k] = "quoted"
    if not found_cut:
        cut = reply_parser_cut(text, lines)
        if cut is not None and cut > 0:
            for k in range(cut, n):
                kinds[k] = "forwarded" if forward_subject else "quoted"

    new_lines = [k for k in range(n) if kinds[k] == "new"]
    signature_start = find_signature_start(lines, new_lines, signature_start)
    new = [lines[k] for k in new_lines if signature_start is None or k < signature_start]
    signature = [lines[k] for k in new_lines if signature_start is not None and k >= signature_start]
    return TextSplit(
        new=_join(new),
        quoted=_join(lines[k] for k in range(n) if kinds[k] == "quoted"),
        signature=_join(signature),
        forwarded=_join(lines[k] for k in range(n) if kinds[k] == "forwarded"),
    )


def _join(lines: object) -> str:
    assert not isinstance(lines, str)
    kept = [line for line in lines if line.strip() not in SENTINELS]  # type: ignore[attr-defined]
    return strip_sentinels("\n".join(kept)).strip("\n")
