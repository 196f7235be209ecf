"""Which Trade Assurance order numbers a mail is about, in the order that matters, and why.

Order numbers are long digit strings (12–20 digits by default) that buyers write in groups
("1625 3498 7612 345", "TA-72359 639 8434 7100"), after words such as "order", "订单号" or
"pedido", or before them ("… nolu sipariş"). The same shape is shared by phone numbers, bank
accounts, tax ids, tracking numbers and timestamps, so every candidate is judged by what stands
next to it: the nearest context word before it decides whether it is an order or a decoy.

Sources rank by freshness: the sender's new text first (with links to the order page, then what
only the HTML version shows, then the signature when an order word marks a number there), then
the subject, forwarded content and attachment names. Quoted history only counts for an order of
the case, or in one of our own case threads when nothing fresher names an order. Every accepted
number carries its reasons; every rejected one says why it was rejected.
"""

from __future__ import annotations

import html as html_lib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field

from mailbot.core.phrases import Hit, Phrase, PhraseMatcher
from mailbot.core.text import html_to_text, split_message
from mailbot.core.types import InboundMail, OrderExtraction, OrderRef, RejectedCandidate, ThreadKeys

# Lower tier ranks first. The subject ranks below the body: when a reused thread subject carries
# an older order, the order the buyer writes about now comes first.
_TIER = {
    "new_text": 0,
    "url": 0,
    "html": 1,
    "signature": 2,
    "subject": 3,
    "forwarded": 4,
    "attachment_name": 5,
    "quoted": 6,
}
_SOURCE_WORDS = {
    "new_text": "the new text",
    "url": "a link",
    "html": "the HTML body",
    "signature": "the signature",
    "subject": "the subject",
    "forwarded": "forwarded content",
    "attachment_name": "an attachment name",
    "quoted": "quoted history",
}


def _digit_table() -> dict[int, int]:
    """Every Unicode decimal digit (Arabic-Indic, Devanagari, full-width...) → its ASCII digit."""
    table: dict[int, int] = {}
    for code in range(0x80, 0x10000):
        value = unicodedata.decimal(chr(code), None)
        if value is not None:
            table[code] = ord("0") + value
    return table


_DIGITS = _digit_table()


def normalise_digits(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DIGITS)


@dataclass(frozen=True)
class OrderConfig:
    """What an order number looks like and which words around it count. Built from rules/ files."""

    min_digits: int = 12
    max_digits: int = 20
    typical_min: int = 15
    typical_max: int = 18
    # A group longer than this is a whole number, not a piece: "4709951454867277 2000 pcs" stays apart.
    max_group: int = 6
    # How far (in characters) before / after a number a context word may stand.
    window_before: int = 36
    window_after: int = 24
    # Letters that may stick to an order number ("TA1625349876123", "no.1234…" after NFKC of "nº").
    prefixes: tuple[str, ...] = ("ta", "no", "nr", "n")
    # Query parameters of order links: ".../detail.htm?orderId=5505840392770013".
    url_params: tuple[str, ...] = (
        "orderid",
        "order_id",
        "orderno",
        "order_no",
        "ordernumber",
        "order_number",
    )
    # (language, word); a trailing "*" matches any ending ("заказ*" → заказу, заказа).
    context_words: tuple[tuple[str, str], ...] = ()
    # (kind, language, word): phone, bank, tax, tracking, document, amount ...
    decoy_words: tuple[tuple[str, str, str], ...] = ()
    # (language, phrase) saying the subject's number is wrong: "typo", "mistyped" ...
    correction_words: tuple[tuple[str, str], ...] = ()
    # (name, regex) matched against the whole text; a number inside a match is that thing.
    decoy_patterns: tuple[tuple[str, str], ...] = ()
    # (name, regex) matched against the digits alone (a number that is a timestamp ...).
    digit_patterns: tuple[tuple[str, str], ...] = ()
    _matchers: _Matchers = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matchers", _Matchers.build(self))


@dataclass(frozen=True)
class _Matchers:
    keywords: PhraseMatcher
    corrections: PhraseMatcher
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    digit_patterns: tuple[tuple[str, re.Pattern[str]], ...]
    url: re.Pattern[str]
    context_words: frozenset[str]  # one-word order words, lower case ("order", "pedido")

    @staticmethod
    def build(config: OrderConfig) -> _Matchers:
        keywords = [Phrase(word, "order", lang) for lang, word in config.context_words] + [
            Phrase(word, kind, lang) for kind, lang, word in config.decoy_words
        ]
        params = "|".join(re.escape(p) for p in config.url_params)
        return _Matchers(
            keywords=PhraseMatcher(keywords),
            corrections=PhraseMatcher(
                Phrase(word, "correction", lang) for lang, word in config.correction_words
            ),
            patterns=tuple((name, re.compile(rx)) for name, rx in config.decoy_patterns),
            digit_patterns=tuple((name, re.compile(rx)) for name, rx in config.digit_patterns),
            url=re.compile(rf"(?i)[?&#;/](?:{params})[=/:]([0-9][0-9 -]*[0-9])" if params else r"(?!x)x"),
            context_words=frozenset(
                word.lower().rstrip("*") for _, word in config.context_words if " " not in word.strip()
            ),
        )


def _is_spaced_letter(char: str) -> bool:
    """A letter of a script that separates words with spaces (Latin, Cyrillic, Greek, Arabic...)."""
    if not char.isalpha():
        return False
    code = ord(char)
    return not (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0x3040 <= code <= 0x30FF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
    )


# --------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------

_GROUP = re.compile(r"[0-9]+")
_NON_DIGIT = re.compile(r"[^0-9]")
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
_STRONG_GAP = re.compile(r"(?:[ \t]|[ \t]?[-‐‑–—][ \t]?)")
# "2. " or "2) " after a group that opens a line: the number of a list item.
_ENUMERATOR = re.compile(r"[.)][ \t]")
_LIST_ITEM = re.compile(r"[ \t>]*[0-9]{1,2}[.)][ \t]")
# Across a line break; or on one line (spaces, a dash) between two pieces too short to be orders
# ("3219748087 8451515": a long number typed in two odd pieces, or a soft line break undone).
_WEAK_GAP = re.compile(r"(?:[ \t]*\n[ \t>]*|[ \t]+|[ \t]?[-‐‑–—][ \t]?)")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"]+")
_INLINE_TAG = re.compile(r"(?i)</?(?:span|b|i|u|em|strong|font|a|small|sup|sub)\b[^>]*>")
_BLOCK_TAG = re.compile(r"<[^>]*>")
_ORDER_LINK = re.compile(r"""(?is)<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>.*?</a\s*>""")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AMOUNT_BEFORE = re.compile(r"(?i)(?:[$€£¥₹₽]|\b(?:usd|eur|rmb|cny|gbp|jpy|inr|rub|aed|sar|idr|vnd))\s*$")
_AMOUNT_AFTER = re.compile(r"(?i)^(?:[.,][0-9]{1,2}(?![0-9])|\s*(?:usd|eur|rmb|cny|元|€|\$))")


@dataclass(frozen=True)
class _Candidate:
    digits: str
    written: str
    start: int
    end: int
    source: str
    text: str  # the normalised source text the offsets refer to


def _chains(text: str, config: OrderConfig) -> list[tuple[int, int]]:
    """Spans of digit groups that together may form one number.

    Groups joined by one space or dash form a chain when every group is short (≤ max_group).
    Across a line break, chains merge when one side is a fragment shorter than an order number
    (hard wrapping); across spaces or a dash on one line only when both are (a table keeps its
    columns, and a complete number keeps the quantity after it apart).
    """
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text)]
    if not groups:
        return []
    # 1. strong chains
    strong: list[list[tuple[int, int]]] = [[groups[0]]]
    for prev, cur in itertools.pairwise(groups):
        gap = text[prev[1] : cur[0]]
        if (
            _STRONG_GAP.fullmatch(gap)
            and prev[1] - prev[0] <= config.max_group
            and cur[1] - cur[0] <= config.max_group
        ):
            strong[-1].append(cur)
        else:
            strong.append([cur])
    # 2. weak merges
    spans: list[tuple[int, int, int]] = []  # start, end, digit count
    for chain in strong:
        start, end = chain[0][0], chain[-1][1]
        count = sum(e - s for s, e in chain)
        if spans:
            p_start, p_end, p_count = spans[-1]
            gap = text[p_end:start]
            fragment = (
                (p_count < config.min_digits or count < config.min_digits)
                if "\n" in gap
                else (p_count < config.min_digits and count < config.min_digits)
            )
            if (
                _WEAK_GAP.fullmatch(gap)
                and fragment
                and p_count + count <= config.max_digits
                and max(p_count, count) >= 3
                and not ("\n" in gap and _starts_list_item(text, start, end, p_start, p_count, config))
            ):
                spans[-1] = (p_start, end, p_count + count)
                continue
        spans.append((start, end, count))
    return [(s, e) for s, e, _ in spans]


def _starts_list_item(
    text: str, start: int, end: int, p_start: int, p_count: int, config: OrderConfig
) -> bool:
    """Is the group at `start` the number of a list item ("2. PO 77124 / TA …") rather than the
    wrapped end of the number above? It is when the line above is an item of the same list, or
    when the number above is already complete."""
    if end - start > 2 or not _ENUMERATOR.match(text, end):
        return False
    above = text[text.rfind("\n", 0, p_start) + 1 :]
    return _LIST_ITEM.match(above) is not None or p_count >= config.min_digits


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _candidates(text: str, source: str, config: OrderConfig) -> tuple[list[_Candidate], str]:
    """Digit chains in one source text (URLs and e-mail addresses masked), plus the text scanned."""
    found: list[_Candidate] = []
    for url in _URL.finditer(text) if ("http" in text or "www." in text) else ():
        for param in config._matchers.url.finditer(url.group(0)):
            digits = _NON_DIGIT.sub("", param.group(1))
            start = url.start() + param.start(1)
            found.append(_Candidate(digits, param.group(1), start, start + len(param.group(1)), "url", text))
    scanned = _mask(text, _URL) if ("http" in text or "www." in text) else text
    scanned = _mask(scanned, _EMAIL) if "@" in scanned else scanned
    for start, end in _chains(scanned, config):
        written = scanned[start:end]
        digits = _NON_DIGIT.sub("", written)
        found.append(_Candidate(digits, written, start, end, source, scanned))
    return found, scanned


# --------------------------------------------------------------------------------------------
# Judging one candidate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdict:
    accepted: bool
    score: float
    reasons: tuple[str, ...]
    has_context: bool = False


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    line_end = text.find("\n", end)
    return text.rfind("\n", 0, start) + 1, (line_end if line_end >= 0 else len(text))


def _keyword_before(hits: list[Hit], lo: int, hi: int) -> Hit | None:
    """The phrase ending closest before `hi` that starts at or after `lo`."""
    best: Hit | None = None
    for hit in hits:
        if hit.start >= hi:
            break
        if (
            hit.start >= lo
            and hit.end <= hi
            and (best is None or hit.end > best.end or (hit.end == best.end and hit.start < best.start))
        ):
            best = hit
    return best


def _keyword_after(hits: list[Hit], lo: int, hi: int) -> Hit | None:
    return next((h for h in hits if lo <= h.start < hi), None)


def _named(hit: Hit) -> str:
    return f"{hit.phrase.text!r} ({hit.phrase.language})"


def _judge(c: _Candidate, config: OrderConfig, hits: list[Hit]) -> _Verdict:
    n = len(c.digits)
    text = c.text
    if n < config.min_digits:
        return _Verdict(False, 0.0, (f"{n} digits: shorter than an order number ({config.min_digits})",))
    if n > config.max_digits:
        return _Verdict(False, 0.0, (f"{n} digits: longer than an order number ({config.max_digits})",))
    line_start, line_end = _line_bounds(text, c.start, c.end)
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
            return _Verdict(False, 0.0, (shape,))
        if reasons:
            score += 0.5
        for name, pattern in config._matchers.patterns:
            for match in pattern.finditer(text, line_start, line_end):
                if match.start() <= c.start < match.end():
                    return _Verdict(False, 0.0, (f"looks like {name}",))

    has_context = c.source == "url"
    if c.source != "url":
        near = _keyword_before(hits, window_start, c.start)
        following = _keyword_after(hits, c.end, c.end + len(after))
        if near is not None and near.phrase.tag != "order":
            return _Verdict(False, 0.0, (f"after {_named(near)}: a {near.phrase.tag} number",))
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
            previous_start = _previous_line_start(text, line_start)
            lo, hi, cell_start = _column_heading(text, previous_start, line_start, c.start)
            alone = not (text[cell_start : c.start] if cell_start is not None else before).strip()
            heading = _keyword_before(hits, lo, hi) if alone or line_start == window_start else None
            if heading is not None and heading.phrase.tag == "order":
                reasons.append(f"under the heading {_named(heading)}")
                score += 0.5
                has_context = True
            elif heading is not None and alone:
                return _Verdict(False, 0.0, (f"under {_named(heading)}: a {heading.phrase.tag} number",))

    if not has_context:
        for name, pattern in config._matchers.digit_patterns:
            if pattern.fullmatch(c.digits):
                return _Verdict(False, 0.0, (f"the digits look like {name}",))
    if c.written != c.digits:
        reasons.append(f"digits joined from {c.written.strip()!r}")
    if config.typical_min <= n <= config.typical_max:
        score += 0.1
    return _Verdict(True, score, tuple(reasons), has_context)


def _shape_decoy(
    c: _Candidate, before: str, after: str, config: OrderConfig, reasons: list[str]
) -> str | None:
    """Why the characters glued to the number make it something else; None when they do not."""
    if before and not before[-1].isspace():
        glued = _GLUED_LETTERS.search(before)
        if glued and _is_spaced_letter(glued.group(1)[-1]):
            letters = glued.group(1)
            if letters.lower() in config.prefixes:
                reasons.append(f"written with the prefix {letters!r}")
            elif before.endswith(letters):
                return f"attached to the letters {letters!r}: another kind of id"
            elif len(letters) <= _MAX_CODE_LETTERS and letters.lower() not in config._matchers.context_words:
                # "INS-2026-0418-7751", "INV-20260311-0087": a code with its own letters, not an order.
                return f"written as the code {letters + '-'!r}: another kind of id"
    if after and _is_spaced_letter(after[0]):
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


def _cells(line: str) -> list[tuple[int, int]]:
    """Cell spans of a table row: split at "|" or tabs, else at runs of two or more spaces."""
    separator = re.compile(r"\|" if "|" in line else "\t" if "\t" in line else " {2,}")
    spans, start = [], 0
    for match in separator.finditer(line):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(line)))
    return [(s, e) for s, e in spans if line[s:e].strip()] if separator.pattern == " {2,}" else spans


def _column_heading(
    text: str, heading_start: int, line_start: int, position: int
) -> tuple[int, int, int | None]:
    """Where the heading of a number at `position` stands in the line above, and where the
    number's table cell starts. In a table that is the heading of the number's own column
    ("Trade Assurance order | PO No." above "9120 4471 8836 0052 | 2026-PO-55810"); otherwise the
    whole line above (and no cell)."""
    heading_end = max(heading_start, line_start - 1)
    whole = (heading_start, heading_end, None)
    line_end = text.find("\n", position)
    heading, row = (
        text[heading_start:heading_end],
        text[line_start : line_end if line_end >= 0 else len(text)],
    )
    head_cells, row_cells = _cells(heading), _cells(row)
    column = position - line_start
    index = next((i for i, (s, e) in enumerate(row_cells) if s <= column < e), None)
    if len(head_cells) < 2 or len(row_cells) < 2 or index is None:
        return whole
    if "|" in heading or "\t" in heading:
        if len(head_cells) != len(row_cells):
            return whole
        start, end = head_cells[index]
    else:
        # Aligned with spaces: the heading cell that stands above the number's first digit.
        above = [(s, e) for s, e in head_cells if s <= column < e]
        if not above:
            return whole
        start, end = above[0]
    return heading_start + start, heading_start + end, line_start + row_cells[index][0]


def _previous_line_start(text: str, line_start: int) -> int:
    """Start of the nearest non-empty line above the line starting at `line_start`."""
    end = line_start - 1
    while end > 0 and text[end - 1] == "\n":
        end -= 1
    return text.rfind("\n", 0, max(end, 0)) + 1 if end > 0 else 0


# --------------------------------------------------------------------------------------------
# The mail
# --------------------------------------------------------------------------------------------


@dataclass
class _Found:
    number: str
    source: str
    position: tuple[int, int]
    score: float
    reasons: list[str]


def extract_orders(
    mail: InboundMail,
    config: OrderConfig,
    *,
    case_orders: tuple[str, ...] = (),
    thread: ThreadKeys | None = None,
) -> OrderExtraction:
    """All order numbers the mail is about, most relevant first, each with the reasons it won.

    `case_orders` are the orders of the case the mail already belongs to (from the store): they
    count even in quoted history. `thread` says whether the mail replies inside one of our cases,
    which makes numbers quoted from our own messages eligible when nothing fresher names one.
    """
    accepted: dict[str, _Found] = {}
    rejected: list[RejectedCandidate] = []

    _consider(accepted, rejected, mail.new_text, "new_text", config)
    if mail.html and not any(f.source in {"new_text", "url"} for f in accepted.values()):
        _consider(accepted, rejected, _html_new_text(mail, config), "html", config)
    _consider(accepted, rejected, mail.signature, "signature", config)
    _consider(accepted, rejected, mail.subject, "subject", config)
    _consider(accepted, rejected, mail.forwarded_text, "forwarded", config)
    for index, attachment in enumerate(mail.attachments):
        if attachment.filename:
            _consider(accepted, rejected, attachment.filename, "attachment_name", config, index)
    _apply_corrections(mail, config, accepted, rejected)

    fresh = bool(accepted)
    in_thread = thread is not None and bool(thread.our_message_ids or thread.case_refs)
    quoted: dict[str, _Found] = {}
    _consider(quoted, rejected, mail.quoted_text, "quoted", config)
    for number, found in quoted.items():
        if number in accepted:
            accepted[number].reasons.append("also in quoted history")
        elif number in case_orders:
            found.reasons.append("an order of this case")
            accepted[number] = found
        elif in_thread and not fresh:
            found.reasons.append("quoted from our own case thread")
            accepted[number] = found
        else:
            why = "only in quoted history of an earlier message" + (
                "; the new text names another order" if fresh else ""
            )
            rejected.append(RejectedCandidate(number, "quoted", why))

    ordered = sorted(accepted.values(), key=lambda f: (_TIER[f.source], f.position))
    refs = tuple(
        OrderRef(
            number=f.number,
            score=round(f.score, 2),
            source=f.source,
            reasons=(f"found in {_SOURCE_WORDS[f.source]}", *dict.fromkeys(f.reasons)),
        )
        for f in ordered
    )
    kept = tuple(dict.fromkeys(r for r in rejected if _NON_DIGIT.sub("", r.text) not in accepted))
    return OrderExtraction(orders=refs, rejected=kept)


def _consider(
    target: dict[str, _Found],
    rejected: list[RejectedCandidate],
    source_text: str,
    source: str,
    config: OrderConfig,
    index: int = 0,
) -> None:
    if not source_text or not any(ch.isdigit() for ch in source_text):
        return
    candidates, scanned = _candidates(normalise_digits(source_text), source, config)
    cache: dict[tuple[int, int], list[Hit]] = {}
    for c in candidates:
        plausible = config.min_digits <= len(c.digits) <= config.max_digits
        verdict = _judge(c, config, _hits_near(c, scanned, config, cache) if plausible else [])
        if not verdict.accepted:
            if len(c.digits) >= 9:
                rejected.append(RejectedCandidate(c.written.strip(), c.source, verdict.reasons[0]))
            continue
        if c.source == "signature" and not verdict.has_context:
            rejected.append(
                RejectedCandidate(c.written.strip(), c.source, "in the signature without an order word")
            )
            continue
        _add(target, c, verdict, index)


def _hits_near(
    c: _Candidate, text: str, config: OrderConfig, cache: dict[tuple[int, int], list[Hit]]
) -> list[Hit]:
    """Lexicon words on the candidate's line and the line above (all that _judge looks at)."""
    line_start, line_end = _line_bounds(text, c.start, c.end)
    region = (_previous_line_start(text, line_start) if line_start else 0, line_end)
    if region not in cache:
        found = config._matchers.keywords.find(text[region[0] : region[1]])
        cache[region] = [Hit(h.phrase, h.start + region[0], h.end + region[0]) for h in found]
    return cache[region]


def _add(target: dict[str, _Found], c: _Candidate, verdict: _Verdict, index: int) -> None:
    source = c.source
    existing = target.get(c.digits)
    if existing is not None:
        if source != existing.source:
            existing.reasons.append(f"also in {_SOURCE_WORDS[source]}")
        existing.score = max(existing.score, verdict.score)
        existing.reasons.extend(r for r in verdict.reasons if r not in existing.reasons)
        return
    target[c.digits] = _Found(c.digits, source, (index, c.start), verdict.score, list(verdict.reasons))


def _html_new_text(mail: InboundMail, config: OrderConfig) -> str:
    """The new text of the HTML version: it may hold what the text part flattened away (a table,
    digits split over spans). Converted only when the text part named no order, because it costs."""
    html = _show_order_links(mail.html or "", config)
    if not _html_adds_digits(html, mail.text, config):
        return ""
    return split_message(html_to_text(html, mark_quotes=True), subject=mail.subject).new


def _show_order_links(html: str, config: OrderConfig) -> str:
    """Write the target of a link to the order page next to its words: "<a href=…?orderId=2891…>
    this order</a>" names the order although the reader only sees "this order"."""
    if "href" not in html.lower():
        return html

    def shown(match: re.Match[str]) -> str:
        target = html_lib.unescape(match.group(2))
        if not config._matchers.url.search(target):
            return match.group(0)
        return f"{match.group(0)} ({html_lib.escape(target)})"

    return _ORDER_LINK.sub(shown, html)


def _html_adds_digits(html: str, text: str, config: OrderConfig) -> bool:
    """Does the HTML hold a long digit run the text version lacks? A cheap look before converting."""
    visible = normalise_digits(html_lib.unescape(_BLOCK_TAG.sub(" ", _INLINE_TAG.sub("", html))))
    runs = [_NON_DIGIT.sub("", visible[s:e]) for s, e in _chains(visible, config)]
    known = _NON_DIGIT.sub("", normalise_digits(text))
    return any(len(run) >= 9 and run not in known for run in runs)


def _apply_corrections(
    mail: InboundMail, config: OrderConfig, accepted: dict[str, _Found], rejected: list[RejectedCandidate]
) -> None:
    """ "The number in the subject is mistyped": drop subject-only numbers when the text has its own.

    The text says so with a correction word, or shows it: a subject number that is a text number
    with two neighbouring digits swapped is the same order typed twice, and the text's is the one
    written with care (buyers correct the subject in the text, not the other way round)."""
    if not any(f.source == "subject" for f in accepted.values()):
        return
    body = [n for n, f in accepted.items() if _TIER[f.source] <= _TIER["signature"]]
    for number, found in list(accepted.items()):
        twin = next((b for b in body if _swapped_neighbours(number, b)), None)
        if found.source == "subject" and twin is not None:
            del accepted[number]
            rejected.append(
                RejectedCandidate(
                    number, "subject", f"{twin} with two digits swapped: a typo the text corrects"
                )
            )
    corrections = config._matchers.corrections.find(normalise_digits(mail.new_text))
    if not corrections:
        return
    phrase = corrections[0].phrase.text
    body_numbers = [f for f in accepted.values() if _TIER[f.source] <= _TIER["signature"]]
    if not body_numbers:
        return
    for number, found in list(accepted.items()):
        if found.source == "subject":
            del accepted[number]
            rejected.append(
                RejectedCandidate(number, "subject", f"the text corrects the subject ({phrase!r})")
            )


def _swapped_neighbours(a: str, b: str) -> bool:
    """Are a and b the same digits but for two neighbours swapped ("…0169" and "…0196")?"""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
