"""Writing systems as data: which characters belong to which script, and how its words are told apart.

The ranges come from rules/scripts.toml, one definition for every stage that cares: language
detection (the script decides first: kana is Japanese, Hangul Korean), phrase matching (a Chinese
phrase is found inside a run of characters, not as a whole word) and order numbers (digits glued
to Latin letters are another kind of id, glued to Chinese characters they are not). A supervisor
adds a script (Thai, Hebrew...) by adding its ranges there, not by editing code.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

#: The script of letters no range names: counted as words, like Latin, but not scored by stopwords.
OTHER = "other"


@dataclass(frozen=True)
class Script:
    """One writing system: its code point ranges (inclusive) and how text in it is read."""

    name: str
    ranges: tuple[tuple[int, int], ...]
    # Written without spaces between words (or, like Hangul, with particles glued to words):
    # counted by character, and phrases in it are found as substrings.
    unspaced: bool = False
    # For an unspaced script: how many characters weigh as much as one word of a spaced script.
    chars_per_word: float = 1.0
    # The language this script points to when that language is allowed ("" for none).
    language: str = ""


@dataclass(frozen=True)
class Scripts:
    """All known scripts, with a sorted index for looking up the script of one character."""

    scripts: tuple[Script, ...] = ()
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)
    _spans: tuple[tuple[int, int, str], ...] = field(init=False, repr=False, compare=False, hash=False)
    _unspaced: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)
    _patterns: dict[str, re.Pattern[str]] = field(init=False, repr=False, compare=False, hash=False)
    # Look-ups already made: a mail's words start with the same few letters again and again.
    _memo: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)
    _word_memo: dict[frozenset[str], frozenset[str]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        spans = sorted((lo, hi, s.name) for s in self.scripts for lo, hi in s.ranges)
        object.__setattr__(self, "_spans", tuple(spans))
        object.__setattr__(self, "_starts", tuple(lo for lo, _, _ in spans))
        unspaced = [r for s in self.scripts if s.unspaced for r in s.ranges]
        object.__setattr__(self, "_unspaced", _char_class(unspaced))
        object.__setattr__(
            self, "_patterns", {s.name: _char_class(s.ranges) for s in self.scripts if s.unspaced}
        )
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "_word_memo", {})

    def of(self, char: str) -> str:
        """The name of the script `char` belongs to; OTHER when no range holds it."""
        found = self._memo.get(char)
        if found is None:
            code = ord(char)
            i = bisect_right(self._starts, code) - 1
            found = self._spans[i][2] if i >= 0 and code <= self._spans[i][1] else OTHER
            self._memo[char] = found
        return found

    def of_words(self, words: frozenset[str]) -> frozenset[str]:
        """The scripts the words start in (a language's stopwords: which scripts it is written in)."""
        found = self._word_memo.get(words)
        if found is None:
            found = frozenset(self.of(w[0]) for w in words if w)
            self._word_memo[words] = found
        return found

    @property
    def unspaced_pattern(self) -> re.Pattern[str]:
        """One character of any unspaced script (never matches when none is defined)."""
        return self._unspaced

    def is_unspaced(self, char: str) -> bool:
        return self._unspaced.match(char) is not None

    def unspaced(self) -> dict[str, re.Pattern[str]]:
        """Each unspaced script's name → a pattern of one of its characters (for counting)."""
        return self._patterns

    def get(self, name: str) -> Script | None:
        return next((s for s in self.scripts if s.name == name), None)


def _char_class(ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> re.Pattern[str]:
    if not ranges:
        return re.compile(r"(?!x)x")
    parts = "".join(f"{_escape(lo)}-{_escape(hi)}" if lo != hi else _escape(lo) for lo, hi in ranges)
    return re.compile(f"[{parts}]")


def _escape(code: int) -> str:
    return f"\\U{code:08x}"


#: No script known: every letter is read as part of a spaced script (configs built without rules/).
NO_SCRIPTS = Scripts()
