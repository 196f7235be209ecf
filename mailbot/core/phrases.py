"""Finding lexicon phrases in text: whole words for spaced scripts, substrings for CJK.

Supervisors' lexicons hold about a thousand phrases in a dozen languages. One big regular
expression over all of them took close to a second per mail (every alternative is tried at every
position), so phrases are indexed by their first word instead and text is matched word by word;
Chinese and Japanese phrases, which have no word boundaries, are found by substring search (which
scripts are written so is data: rules/scripts.toml).

Matching ignores case, treats a trailing "*" as "any ending" (`cancel*` matches "cancelled") and
compares words after the same tokenisation as the text, so "re-check" matches "re check" too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailbot.core.scripts import Scripts

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class Phrase:
    """One lexicon entry: its text as written, what it stands for, its language and weight."""

    text: str
    tag: str
    language: str
    weight: float = 1.0


@dataclass(frozen=True)
class Hit:
    phrase: Phrase
    start: int
    end: int

    @property
    def matched(self) -> str:
        return self.phrase.text


@dataclass(frozen=True)
class _WordPhrase:
    words: tuple[str, ...]
    stem: bool
    phrase: Phrase
    tail: str = ""  # punctuation the phrase ends with ("auto:"), required after the last word


def _fold(word: str) -> str:
    return word.lower().replace("’", "'")


class PhraseMatcher:
    """Built once from the lexicons; `find` is then cheap enough to run on every mail."""

    def __init__(self, phrases: Iterable[Phrase], scripts: Scripts) -> None:
        # Phrases in scripts written without spaces (rules/scripts.toml) are found as substrings.
        self._unspaced = scripts.unspaced_pattern
        self._by_first: dict[str, list[_WordPhrase]] = {}
        self._stems: dict[str, list[_WordPhrase]] = {}
        self._substrings: list[tuple[str, Phrase]] = []  # CJK: searched only in CJK text
        self._symbols: list[tuple[str, Phrase]] = []  # "№", "#": searched everywhere
        for phrase in phrases:
            raw = phrase.text.strip()
            stem = raw.endswith("*")
            core = raw.rstrip("*").strip()
            if not core:
                continue
            if self._unspaced.search(core):
                self._substrings.append((_fold(core), phrase))
                continue
            if not _TOKEN.match(core):
                self._symbols.append((_fold(core), phrase))
                continue
            words = tuple(_fold(m.group(0)) for m in _TOKEN.finditer(core))
            last = list(_TOKEN.finditer(core))[-1]
            entry = _WordPhrase(words, stem, phrase, core[last.end() :].strip())
            if stem and len(words) == 1:
                self._stems.setdefault(words[0][:2], []).append(entry)
            else:
                self._by_first.setdefault(words[0], []).append(entry)
        self._substrings.sort(key=lambda item: -len(item[0]))

    def find(self, text: str, base: int = 0) -> list[Hit]:
        """Every occurrence of every phrase, sorted by start, longest first at the same start.

        `base` is added to every offset: the text is a slice of a larger one the caller indexes.
        """
        hits: list[Hit] = []
        # Fold the whole text at once (one C call) when folding keeps every offset; a word is then
        # just a slice of it. Tokens that start no phrase cost one dictionary look-up each.
        folded = _fold(text)
        if len(folded) == len(text):
            matches = list(_TOKEN.finditer(folded))
            words = [m.group(0) for m in matches]
        else:
            matches = list(_TOKEN.finditer(text))
            words = [_fold(m.group(0)) for m in matches]
        by_first, stems = self._by_first, self._stems
        starting = [i for i, word in enumerate(words) if word in by_first or word[:2] in stems]
        for i in starting:
            word = words[i]
            entries = by_first.get(word)
            if entries:
                start = matches[i].start() + base
                for entry in entries:
                    n = len(entry.words)
                    if i + n > len(words):
                        continue
                    window = words[i : i + n]
                    if window[:-1] != list(entry.words[:-1]):
                        continue
                    last, wanted = window[-1], entry.words[-1]
                    end = matches[i + n - 1].end()
                    if (last.startswith(wanted) if entry.stem else last == wanted) and _tail_ok(
                        text, end, entry.tail
                    ):
                        hits.append(Hit(entry.phrase, start, end + base))
            stemmed = stems.get(word[:2])
            if stemmed:
                start, end = matches[i].span()
                for entry in stemmed:
                    if word.startswith(entry.words[0]) and _tail_ok(text, end, entry.tail):
                        hits.append(Hit(entry.phrase, start + base, end + base))
        needles = self._symbols + (self._substrings if self._unspaced.search(text) else [])
        if needles:
            lowered = text.lower()
            haystack = lowered if len(lowered) == len(text) else text
            # A needle with a character the text lacks cannot be there: not searched for.
            present = set(haystack) if len(needles) > 8 else None
            for needle, phrase in needles:
                if present is not None and not present.issuperset(needle):
                    continue
                pos = haystack.find(needle)
                while pos >= 0:
                    hits.append(Hit(phrase, pos + base, pos + len(needle) + base))
                    pos = haystack.find(needle, pos + 1)
        hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
        return hits


def _tail_ok(text: str, end: int, tail: str) -> bool:
    """A phrase written with closing punctuation ("auto:") needs it in the text too."""
    if not tail:
        return True
    rest = text[end : end + len(tail) + 2].lstrip(" ")
    return rest[: len(tail)].lower() == tail.lower()
