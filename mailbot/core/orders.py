"""Which Trade Assurance order numbers a mail is about, in the order that matters, and why.

Order numbers are long digit strings (12–20 digits by default) that buyers write in groups
("1625 3498 7612 345", "TA-72359 639 8434 7100"), after words such as "order", "订单号" or
"pedido", or before them ("… nolu sipariş"). The same shape is shared by phone numbers, bank
accounts, tax ids, tracking numbers and timestamps, so every candidate is judged by what stands
next to it: the nearest context word before it decides whether it is an order or a decoy.

Sources rank by freshness: the sender's new text first (with links to the order page, then what
only the HTML version shows, then the signature when an order word marks a number there), then
the subject, forwarded content, attachment names and the text of attachments (a PDF, .msg, text
or CSV file: core/attachments.py). Quoted history only counts for an order of
the case, or in one of our own case threads when nothing fresher names an order. Every accepted
number carries its reasons; every rejected one says why it was rejected.
"""

from __future__ import annotations

import html as html_lib
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field

from mailbot.core.bounded_patterns import BoundedPattern, bounded
from mailbot.core.order_lines import TextLines, WordsNear
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
    "attachment": 6,  # the text of an attached PDF, .msg, text or CSV file
    "quoted": 7,
}
_SOURCE_WORDS = {
    "new_text": "the new text",
    "url": "a link",
    "html": "the HTML body",
    "signature": "the signature",
    "subject": "the subject",
    "forwarded": "forwarded content",
    "attachment_name": "an attachment name",
    "attachment": "an attachment",
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


# A decimal digit outside ASCII (Arabic-Indic, Devanagari...): only then is the text translated,
# which costs a dictionary look-up per character of a non-ASCII text.
_FOREIGN_DIGIT = re.compile(r"[^\x00-\x7f\D]")


def normalise_digits(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.translate(_DIGITS) if not text.isascii() and _FOREIGN_DIGIT.search(text) else text


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
    # (name, regex) matched against each line; a number inside a match is that thing.
    decoy_patterns: tuple[tuple[str, str], ...] = ()
    # (name, regex) matched against the digits alone (a number that is a timestamp ...).
    digit_patterns: tuple[tuple[str, str], ...] = ()
    # At most this many numbers of an order number's length are judged per mail: a mail listing
    # tens of thousands is a machine's dump, and judging them all would hold up the mailbox.
    max_candidates: int = 1000
    _matchers: _Matchers = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matchers", _Matchers.build(self))


@dataclass(frozen=True)
class _Matchers:
    keywords: PhraseMatcher
    corrections: PhraseMatcher
    patterns: tuple[tuple[str, BoundedPattern], ...]
    digit_patterns: tuple[tuple[str, BoundedPattern], ...]
    url: re.Pattern[str]
    strong_chain: re.Pattern[str]  # digit groups joined into one chain (see _chains)
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
            # Supervisors write these: matched in linear time (see bounded_patterns).
            patterns=tuple((name, bounded(rx)) for name, rx in config.decoy_patterns),
            digit_patterns=tuple((name, bounded(rx)) for name, rx in config.digit_patterns),
            url=re.compile(rf"(?i)[?&#;/](?:{params})[=/:]([0-9][0-9 -]*[0-9])" if params else r"(?!x)x"),
            strong_chain=_strong_chain(config.max_group),
            context_words=frozenset(
                word.lower().rstrip("*") for _, word in config.context_words if " " not in word.strip()
            ),
        )


def _strong_chain(max_group: int) -> re.Pattern[str]:
    """Groups of at most `max_group` digits joined by one space or dash, or one group alone."""
    if max_group < 1:
        return re.compile(r"(?P<one>[0-9]+)")
    group = rf"[0-9]{{1,{max_group}}}(?![0-9])"
    return re.compile(rf"(?P<chain>{group}(?:{_STRONG_GAP.pattern}{group})+)|(?P<one>[0-9]+)")


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
_ANY_DIGIT = re.compile(r"\d")
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
# Tags never contain "<": a stray "<" (in text, or a tag left open) ends the attempt there instead
# of every "<" scanning to the end of the text (quadratic on "<<<<…").
_INLINE_TAG = re.compile(r"(?i)</?(?:span|b|i|u|em|strong|font|a|small|sup|sub)\b[^<>]*>")
_BLOCK_TAG = re.compile(r"<[^<>]*>")
_LINK_OPEN = re.compile(r"""(?i)<a\b[^<>]*?\bhref\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)')[^<>]*>""")
_LINK_CLOSE = re.compile(r"(?i)</a\s*>")
# Starts only where an address can start, so a long run of word characters without a domain
# is tried once, not once per character.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: How the reason of the numbers left unjudged (past `max_candidates`) begins.
NOT_READ = "not read: "
# Longer texts are shortened in the list of rejected numbers a decision keeps.
_MAX_SHOWN = 60
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


def _chains(text: str, config: OrderConfig) -> list[tuple[int, int, int]]:
    """Spans of digit groups that together may form one number, with their digit counts.

    Groups joined by one space or dash form a chain when every group is short (≤ max_group).
    Across a line break, chains merge when one side is a fragment shorter than an order number
    (hard wrapping); across spaces or a dash on one line only when both are (a table keeps its
    columns, and a complete number keeps the quantity after it apart).
    """
    # 1. strong chains, found by one regular expression
    strong = [
        (m.start(), m.end(), m.end() - m.start() if m.lastgroup == "one" else _digit_count(m.group()))
        for m in config._matchers.strong_chain.finditer(text)
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
    return len(_NON_DIGIT.sub("", text))


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


def _candidates(
    text: str, source: str, config: OrderConfig, budget: _Budget
) -> tuple[list[_Candidate], str, int]:
    """Digit chains in one source text (URLs and e-mail addresses masked), the text scanned, and
    how many numbers of an order's length were left unjudged because the mail's budget ran out
    (those are only counted, not built)."""
    found: list[_Candidate] = []
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
        for param in config._matchers.url.finditer(url.group(0)):
            digits = _NON_DIGIT.sub("", param.group(1))
            start = url.start() + param.start(1)
            if admitted(len(digits)):
                found.append(
                    _Candidate(digits, param.group(1), start, start + len(param.group(1)), "url", text)
                )
    scanned = _mask(text, _URL) if ("http" in text or "www." in text) else text
    scanned = _mask(scanned, _EMAIL) if "@" in scanned else scanned
    shortest = min(config.min_digits, 9)  # shorter runs can be neither orders nor worth a reason
    for start, end, count in _chains(scanned, config):
        if count < shortest or not admitted(count):
            continue
        written = scanned[start:end]
        digits = written if count == end - start else _NON_DIGIT.sub("", written)
        found.append(_Candidate(digits, written, start, end, source, scanned))
    return found, scanned, skipped


# --------------------------------------------------------------------------------------------
# Judging one candidate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdict:
    accepted: bool
    score: float
    reasons: tuple[str, ...]
    has_context: bool = False


# Words are searched this far past the last candidate that needs them (no phrase is longer), and
# at first this much further, so the next candidates on a long line find them already there.
_PHRASE_REACH = 256
_FIRST_REACH = 8192


class _Scan:
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
            for name, pattern in self.config._matchers.patterns:
                found = [(m.start(), m.end()) for m in pattern.finditer(line)]
                spans.append((name, [s for s, _ in found], [e for _, e in found]))
            self._decoys[line_start] = spans
        column = position - line_start
        for name, starts, ends in spans:
            i = bisect_right(starts, column) - 1
            if i >= 0 and column < ends[i]:
                return name
        return None

    def near(self, c: _Candidate) -> WordsNear:
        """Lexicon words on the candidate's line and the line above (all that _judge looks at).

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
            words = self.config._matchers.keywords.find(self.lines.text[region[0] : cut], region[0])
            known = (cut, WordsNear(words))
            self._near[region] = known
        return known[1]


def _named(hit: Hit) -> str:
    return f"{hit.phrase.text!r} ({hit.phrase.language})"


def _judge(c: _Candidate, scan: _Scan, words: WordsNear | None) -> _Verdict:
    config = scan.config
    n = len(c.digits)
    text = c.text
    if n < config.min_digits:
        return _Verdict(False, 0.0, (f"{n} digits: shorter than an order number ({config.min_digits})",))
    if n > config.max_digits:
        return _Verdict(False, 0.0, (f"{n} digits: longer than an order number ({config.max_digits})",))
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
            return _Verdict(False, 0.0, (shape,))
        if reasons:
            score += 0.5
        decoy = scan.decoy_at(line_start, c.start)
        if decoy is not None:
            return _Verdict(False, 0.0, (f"looks like {decoy}",))

    has_context = c.source == "url"
    if c.source != "url" and words is not None:
        near = words.before(window_start, c.start)
        following = words.after(c.end, c.end + len(after))
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
    where: str = ""  # the source in words when it is more than the tier says: "attachment PI.pdf"


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
    budget = _Budget(config.max_candidates)

    _consider(accepted, rejected, mail.new_text, "new_text", config, budget)
    if mail.html and not any(f.source in {"new_text", "url"} for f in accepted.values()):
        _consider(accepted, rejected, _html_new_text(mail, config), "html", config, budget)
    _consider(accepted, rejected, mail.signature, "signature", config, budget)
    _consider(accepted, rejected, mail.subject, "subject", config, budget)
    _consider(accepted, rejected, mail.forwarded_text, "forwarded", config, budget)
    for index, attachment in enumerate(mail.attachments):
        if attachment.filename:
            _consider(accepted, rejected, attachment.filename, "attachment_name", config, budget, index)
    for index, extracted in enumerate(mail.attachment_texts):
        where = f"attachment {extracted.filename}"
        _consider(accepted, rejected, extracted.text, "attachment", config, budget, index, where)
    _apply_corrections(mail, config, accepted, rejected)

    fresh = bool(accepted)
    in_thread = thread is not None and bool(thread.our_message_ids or thread.case_refs)
    quoted: dict[str, _Found] = {}
    _consider(quoted, rejected, mail.quoted_text, "quoted", config, budget)
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
            reasons=(f"found in {f.where or _SOURCE_WORDS[f.source]}", *dict.fromkeys(f.reasons)),
        )
        for f in ordered
    )
    kept = tuple(dict.fromkeys(r for r in rejected if _NON_DIGIT.sub("", r.text) not in accepted))
    return OrderExtraction(orders=refs, rejected=kept)


class _Budget:
    """How many more numbers of an order number's length this mail may have judged."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.limit = limit
        self.reasons = limit  # rejected numbers kept with their reason


def _shown(written: str) -> str:
    written = written.strip()
    return written if len(written) <= _MAX_SHOWN else written[: _MAX_SHOWN - 1] + "…"


def _consider(
    target: dict[str, _Found],
    rejected: list[RejectedCandidate],
    source_text: str,
    source: str,
    config: OrderConfig,
    budget: _Budget,
    index: int = 0,
    where: str = "",
) -> None:
    if not source_text or not _ANY_DIGIT.search(source_text):
        return
    candidates, scanned, skipped = _candidates(normalise_digits(source_text), source, config, budget)
    scan = _Scan(scanned, config)
    for c in candidates:
        plausible = config.min_digits <= len(c.digits) <= config.max_digits
        verdict = _judge(c, scan, scan.near(c) if plausible else None)
        if not verdict.accepted:
            if len(c.digits) >= 9 and budget.reasons > 0:
                budget.reasons -= 1
                rejected.append(RejectedCandidate(_shown(c.written), c.source, verdict.reasons[0]))
            continue
        if c.source in {"signature", "attachment"} and not verdict.has_context:
            # A signature or a document is full of numbers the sender did not write about.
            why = f"in {_SOURCE_WORDS[c.source]} without an order word"
            rejected.append(RejectedCandidate(_shown(c.written), c.source, why))
            continue
        _add(target, c, verdict, index, where)
    if skipped:
        rejected.append(
            RejectedCandidate(
                f"{skipped} more numbers",
                source,
                f"{NOT_READ}only the first {budget.limit} numbers of a mail are judged",
            )
        )


def _add(target: dict[str, _Found], c: _Candidate, verdict: _Verdict, index: int, where: str = "") -> None:
    source = c.source
    existing = target.get(c.digits)
    if existing is not None:
        if source != existing.source:
            existing.reasons.append(f"also in {where or _SOURCE_WORDS[source]}")
        existing.score = max(existing.score, verdict.score)
        existing.reasons.extend(r for r in verdict.reasons if r not in existing.reasons)
        return
    target[c.digits] = _Found(c.digits, source, (index, c.start), verdict.score, list(verdict.reasons), where)


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
    closings = [m.end() for m in _LINK_CLOSE.finditer(html)]
    out: list[str] = []
    done = inside = 0
    for opening in _LINK_OPEN.finditer(html):
        if opening.start() < inside:
            continue  # within the link just looked at
        i = bisect_right(closings, opening.end() - 1)
        if i == len(closings):
            break  # no closing tag after this one: no later link has one either
        inside = closings[i]
        target = html_lib.unescape(opening.group(1) if opening.group(1) is not None else opening.group(2))
        if config._matchers.url.search(target):
            out.append(html[done:inside])
            out.append(f" ({html_lib.escape(target)})")
            done = inside
    out.append(html[done:])
    return "".join(out)


# A text without order numbers of its own but with many long runs in its HTML is converted rather
# than searched run by run (each search reads the whole text).
_MAX_RUN_LOOKUPS = 64


def _html_adds_digits(html: str, text: str, config: OrderConfig) -> bool:
    """Does the HTML hold a long digit run the text version lacks? A cheap look before converting."""
    visible = normalise_digits(html_lib.unescape(_BLOCK_TAG.sub(" ", _INLINE_TAG.sub("", html))))
    plain = normalise_digits(text)
    known = _NON_DIGIT.sub("", plain)
    seen = {_NON_DIGIT.sub("", plain[s:e]) for s, e, _ in _chains(plain, config)}
    lookups = 0
    for s, e, _ in _chains(visible, config):
        run = _NON_DIGIT.sub("", visible[s:e])
        if len(run) < 9 or run in seen:
            continue
        lookups += 1
        if lookups > _MAX_RUN_LOOKUPS or run not in known:
            return True
    return False


def _apply_corrections(
    mail: InboundMail, config: OrderConfig, accepted: dict[str, _Found], rejected: list[RejectedCandidate]
) -> None:
    """ "The number in the subject is mistyped": drop subject-only numbers when the text has its own.

    The text says so with a correction word, or shows it: a subject number that is a text number
    with two neighbouring digits swapped is the same order typed twice, and the text's is the one
    written with care (buyers correct the subject in the text, not the other way round)."""
    if not any(f.source == "subject" for f in accepted.values()):
        return
    body = {n: rank for rank, (n, f) in enumerate(accepted.items()) if _TIER[f.source] <= _TIER["signature"]}
    for number, found in list(accepted.items()):
        if found.source != "subject":
            continue
        twins = [v for v in _neighbour_swaps(number) if v in body]
        twin = min(twins, key=body.__getitem__) if twins else None
        if twin is not None:
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


def _neighbour_swaps(number: str) -> set[str]:
    """Every other number made by swapping two neighbouring digits of `number`."""
    swaps = {number[:i] + number[i + 1] + number[i] + number[i + 2 :] for i in range(len(number) - 1)}
    swaps.discard(number)
    return swaps
