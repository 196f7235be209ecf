"""What an order number looks like, and the matchers built once from the rule files.

`OrderConfig` holds what supervisors tune in rules/orders.toml and the lexicons; its matchers
(the lexicon words, the look-alike patterns, the chain regex) are compiled once per rule set.
Digits of every script are folded to ASCII here, so every later stage sees "0-9" only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from mailbot.core.bounded_patterns import BoundedPattern, bounded
from mailbot.core.phrases import Phrase, PhraseMatcher
from mailbot.core.scripts import NO_SCRIPTS, Scripts


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
    # Which letters belong to scripts written without spaces (rules/scripts.toml).
    scripts: Scripts = NO_SCRIPTS
    matchers: Matchers = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matchers", Matchers.build(self))


@dataclass(frozen=True)
class Matchers:
    keywords: PhraseMatcher
    corrections: PhraseMatcher
    patterns: tuple[tuple[str, BoundedPattern], ...]
    digit_patterns: tuple[tuple[str, BoundedPattern], ...]
    url: re.Pattern[str]
    strong_chain: re.Pattern[str]  # digit groups joined into one chain (see chains)
    context_words: frozenset[str]  # one-word order words, lower case ("order", "pedido")

    @staticmethod
    def build(config: OrderConfig) -> Matchers:
        keywords = [Phrase(word, "order", lang) for lang, word in config.context_words] + [
            Phrase(word, kind, lang) for kind, lang, word in config.decoy_words
        ]
        params = "|".join(re.escape(p) for p in config.url_params)
        return Matchers(
            keywords=PhraseMatcher(keywords, config.scripts),
            corrections=PhraseMatcher(
                (Phrase(word, "correction", lang) for lang, word in config.correction_words), config.scripts
            ),
            # Supervisors write these: matched in linear time (see bounded_patterns).
            patterns=tuple((name, bounded(rx)) for name, rx in config.decoy_patterns),
            digit_patterns=tuple((name, bounded(rx)) for name, rx in config.digit_patterns),
            url=re.compile(rf"(?i)[?&#;/](?:{params})[=/:]([0-9][0-9 -]*[0-9])" if params else r"(?!x)x"),
            strong_chain=strong_chain(config.max_group),
            context_words=frozenset(
                word.lower().rstrip("*") for _, word in config.context_words if " " not in word.strip()
            ),
        )


def strong_chain(max_group: int) -> re.Pattern[str]:
    """Groups of at most `max_group` digits joined by one space or dash, or one group alone."""
    if max_group < 1:
        return re.compile(r"(?P<one>[0-9]+)")
    group = rf"[0-9]{{1,{max_group}}}(?![0-9])"
    return re.compile(rf"(?P<chain>{group}(?:{STRONG_GAP.pattern}{group})+)|(?P<one>[0-9]+)")


def is_spaced_letter(char: str, scripts: Scripts) -> bool:
    """A letter of a script that separates words with spaces (Latin, Cyrillic, Greek, Arabic...)."""
    return char.isalpha() and not scripts.is_unspaced(char)


# One space or one dash (with a blank on either side) between two groups of a chain.
STRONG_GAP = re.compile(r"(?:[ \t]|[ \t]?[-‐‑–—][ \t]?)")
