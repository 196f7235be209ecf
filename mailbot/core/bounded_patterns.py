"""Regular expressions written by supervisors, matched in time linear in the text.

Python's `re` backtracks: `(a+)+$` against forty-one "a" and a "!" tries 2^41 ways and never
returns, and nothing a supervisor can see in the pattern warns about it. Every pattern that comes
from a rule file (routing conditions, the look-alike patterns of orders.toml) is therefore run by
RE2 (google-re2), which guarantees linear time and refuses the two features that cannot have that
guarantee: back-references and look-around. Such a pattern is refused when the rules are checked,
with a reason in plain words, instead of stalling the worker later.

RE2 reads `\\w`, `\\d` and `\\s` as ASCII only; they are rewritten to their Unicode meaning (what
Python gives, and what a supervisor writing about "заказ" or "订单" expects). `\\b` cannot be
rewritten: RE2 sees word edges between ASCII letters only, so a `\\b` written against a letter of
another script would never match and is refused with that explanation.

Many patterns over one text are matched in one pass with an RE2 set (`PatternBank`): a thousand
`subject_matches` rules cost about as much as one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import re2


class PatternProblem(Exception):
    """A pattern that cannot be used, said in plain words (the caller adds file and line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Match(Protocol):
    def start(self, group: int = ...) -> int: ...
    def end(self, group: int = ...) -> int: ...
    def group(self, group: int = ...) -> Any: ...


# Unicode meaning of the classes RE2 reads as ASCII, outside and inside [...].
_OUTSIDE = {
    "w": r"[\p{L}\p{N}_]",
    "W": r"[^\p{L}\p{N}_]",
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "s": r"[\s\p{Z}\x0b\x1c-\x1f\x85]",
    "S": r"[^\s\p{Z}\x0b\x1c-\x1f\x85]",
}
_INSIDE = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "s": r"\s\p{Z}\x0b\x1c-\x1f\x85"}
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_TOO_LARGE = 1000  # RE2's largest counted repetition


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # the reason goes to the supervisor, not to stderr
    return options


def _translate(pattern: str) -> str:
    """The pattern with Python's Unicode classes spelled out for RE2, `\\Z` as `\\z`."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if code in ("b", "B"):
                _check_edge(pattern, i)
            if not in_class and code in _OUTSIDE:
                out.append(_OUTSIDE[code])
            elif in_class and code in _INSIDE:
                out.append(_INSIDE[code])
            elif code == "Z":
                out.append(r"\z")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            # "[]…]" and "[^]…]": a "]" right after the opening is a literal.
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[j : j + 1] == "]":
                out.append(pattern[i + 1 : j + 1].replace("]", r"\]"))
                i = j + 1
                continue
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _check_edge(pattern: str, at: int) -> None:
    """Refuse `\\b` written against a letter of a non-Latin script: RE2 would never match it."""
    after = pattern[at + 2 : at + 3]
    before = pattern[at - 1 : at] if at and pattern[at - 2 : at - 1] != "\\" else ""
    for char in (before, after):
        if char and char.isalnum() and not char.isascii():
            raise PatternProblem(
                f"\\b next to '{char}': word edges are only seen between ASCII letters, so this "
                "would never match; leave the \\b out (or use a *_contains condition, which finds "
                "whole words in every script)"
            )


def _plain_reason(pattern: str, error: str) -> str:
    if _BACKREF.search(pattern):
        return "uses a back-reference, which cannot be matched in bounded time"
    if _LOOKAROUND.search(pattern):
        return "uses a look-ahead or look-behind, which cannot be matched in bounded time"
    if "(?>" in pattern or re.search(r"[*+?}][+]", pattern):
        return "uses an atomic group or a possessive quantifier, which the bounded matcher does not support"
    if "(?#" in pattern or re.search(r"\(\?[a-z]*x", pattern):
        return "uses a comment or the verbose flag (?x), which the bounded matcher does not support"
    if "repetition size" in error:
        return f"repeats something more than {_TOO_LARGE} times, which the bounded matcher does not allow"
    return f"cannot be matched in bounded time ({error})"


@dataclass(frozen=True, eq=False)
class BoundedPattern:
    """One checked pattern: `source` as the supervisor wrote it, matched by RE2."""

    source: str
    ignore_case: bool
    _compiled: Any

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> Match | None:
        found: Match | None = self._compiled.search(text, pos, len(text) if endpos is None else endpos)
        return found

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[Match]:
        found: Iterator[Match] = self._compiled.finditer(text, pos, len(text) if endpos is None else endpos)
        return found

    def fullmatch(self, text: str) -> Match | None:
        found: Match | None = self._compiled.fullmatch(text)
        return found


def bounded(pattern: str, *, ignore_case: bool = False) -> BoundedPattern:
    """Check and compile a supervisor's pattern; PatternProblem says why it cannot be used."""
    if not pattern:
        raise PatternProblem("the pattern is empty")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PatternProblem(f"not a valid pattern: {exc.msg} at position {exc.pos}") from None
    translated = _translate(pattern)
    try:
        compiled = re2.compile(translated, _options(ignore_case))
    except re2.error as exc:
        message = (
            exc.args[0].decode("utf-8", "replace")
            if exc.args and isinstance(exc.args[0], bytes)
            else str(exc)
        )
        raise PatternProblem(_plain_reason(pattern, message)) from None
    return BoundedPattern(pattern, ignore_case, compiled)


class PatternBank:
    """Patterns matched against the same kind of text, answered together in one pass of an RE2 set.

    Patterns are added while a rule set is built; the set is compiled on first use (and again
    if a pattern was added since). Should RE2 run out of its memory budget for the combined
    automaton, every pattern is searched on its own, still in linear time.
    """

    def __init__(self, *, ignore_case: bool = True) -> None:
        self._ignore_case = ignore_case
        self._patterns: list[BoundedPattern] = []
        self._compiled: tuple[int, Any] | None = None

    def add(self, pattern: BoundedPattern) -> int:
        self._patterns.append(pattern)
        return len(self._patterns) - 1

    def matching(self, text: str) -> frozenset[int]:
        """Indices of every pattern found somewhere in `text`."""
        patterns = self._patterns
        compiled = self._compiled
        if compiled is None or compiled[0] != len(patterns):
            compiled = (len(patterns), self._build(patterns))
            self._compiled = compiled
        combined = compiled[1]
        if combined is not None:
            with contextlib.suppress(Exception):  # RE2's memory budget for the set ran out on this text
                return frozenset(combined.Match(text) or ())
        return frozenset(i for i, p in enumerate(patterns) if p.search(text) is not None)

    def _build(self, patterns: list[BoundedPattern]) -> Any:
        combined = re2.Set.SearchSet(_options(self._ignore_case))
        try:
            for pattern in patterns:
                combined.Add(_translate(pattern.source))
            combined.Compile()
        except Exception:  # too large to combine: fall back to one search per pattern
            return None
        return combined
