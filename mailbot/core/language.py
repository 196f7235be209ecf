"""The language a person wrote in, offline and in microseconds, from data that ships with the rules.

The script decides first: kana means Japanese, Han without kana Chinese, Hangul Korean, Arabic
letters Arabic, Cyrillic Russian (the ranges and the language each points to are data, in
rules/scripts.toml). Among Latin-script languages, short frequent words
("stopwords") and typical letters (ñ, ã, ğ, ư...) from each lexicon file are counted. A model
such as lingua would cost 94 MB on disk and about 200 MB of memory, above the worker's budget,
for no gain on the short support texts we see; the stopword lists live in rules/lexicons, so
supervisors extend them together with the other words of a language.

"und" is never returned: without evidence the answer is English (or the first allowed language).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from mailbot.core.scripts import Scripts

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_URL_OR_ADDRESS = re.compile(r"(?i)\bhttps?://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# The script whose languages are told apart by stopwords, letters and suffixes.
_LATIN = "latin"
# Japanese writes Han characters too: the two are weighed together, and kana decides.
_HAN, _KANA = "han", "kana"


# The first few thousand characters say which language a mail is in as well as the whole would.
_MAX_CHARS = 4000


@dataclass(frozen=True)
class LanguageProfile:
    """What a language's lexicon file says about recognising it."""

    language: str
    stopwords: frozenset[str]
    letters: str = ""
    suffixes: tuple[str, ...] = ()  # word endings typical of the language: Turkish -iyor, Spanish -ción


def detect_language(
    text: str, allowed: tuple[str, ...], profiles: Iterable[LanguageProfile], scripts: Scripts
) -> str:
    """ISO 639-1 code of the dominant language of `text`, chosen among `allowed`."""
    fallback = "en" if "en" in allowed or not allowed else allowed[0]
    cleaned = _URL_OR_ADDRESS.sub(" ", text[:_MAX_CHARS])
    words = [w.lower() for w in _WORD.findall(cleaned)]
    if not words:
        return fallback
    # Scripts written without spaces are counted by character, the others by word.
    unspaced = scripts.unspaced()
    counts = {
        s.name: len(unspaced[s.name].findall(cleaned)) for s in scripts.scripts if s.unspaced and s.language
    }
    by_script: dict[str, int] = {}
    for word in words:
        script = scripts.of(word[0])
        if script not in unspaced and (len(word) > 1 or script != _LATIN):
            by_script[script] = by_script.get(script, 0) + 1
    # Compare scripts in "words": an ideograph carries about half a word (chars_per_word = 2).
    weight = {_LATIN: float(by_script.get(_LATIN, 0))}
    for known in scripts.scripts:
        if not known.language:
            continue  # punctuation and symbols of a script point to no language
        if known.unspaced:
            weight[known.name] = counts.get(known.name, 0) / known.chars_per_word
        else:
            weight[known.name] = float(by_script.get(known.name, 0))
    cjk = weight.get(_HAN, 0.0) + weight.get(_KANA, 0.0)
    dominant = max(weight, key=lambda s: weight[s])
    if cjk >= weight[dominant] and cjk > 0:
        kana = counts.get(_KANA, 0)
        dominant = _KANA if kana >= max(2, 0.05 * (counts.get(_HAN, 0) + kana)) else _HAN
        japanese, chinese = _language(scripts, _KANA), _language(scripts, _HAN)
        if dominant == _KANA and japanese not in allowed and chinese in allowed:
            dominant = _HAN
    if dominant != _LATIN:
        language = _language(scripts, dominant)
        if language and language in allowed:
            return _within_script(language, words, dominant, allowed, profiles, scripts)
        if weight[_LATIN] == 0:
            return fallback
    return _latin(words, cleaned, allowed, profiles, fallback)


def _language(scripts: Scripts, name: str) -> str:
    found = scripts.get(name)
    return found.language if found is not None else ""


def _within_script(
    language: str,
    words: list[str],
    script: str,
    allowed: tuple[str, ...],
    profiles: Iterable[LanguageProfile],
    scripts: Scripts,
) -> str:
    """Several allowed languages may share a script (ru / uk / bg); their stopwords decide."""
    rivals = [p for p in profiles if p.language in allowed and p.language != language and p.stopwords]
    rivals = [p for p in rivals if script in scripts.of_words(p.stopwords)]
    if not rivals:
        return language
    own = next((p for p in profiles if p.language == language), None)
    best, best_score = language, sum(1 for w in words if own is not None and w in own.stopwords)
    for profile in rivals:
        score = sum(1 for w in words if w in profile.stopwords)
        if score > best_score:
            best, best_score = profile.language, score
    return best


def _latin(
    words: list[str], text: str, allowed: tuple[str, ...], profiles: Iterable[LanguageProfile], fallback: str
) -> str:
    best, best_score = fallback, 0.0
    for profile in profiles:
        if profile.language not in allowed:
            continue
        score = float(sum(1 for w in words if w in profile.stopwords))
        if profile.letters:
            letter_hits = len(_letter_class(profile.letters).findall(text))
            score += min(letter_hits, 10) * 0.5
        if profile.suffixes:
            score += 0.5 * sum(1 for w in words if len(w) > 4 and w.endswith(profile.suffixes))
        if score > best_score or (score == best_score and score > 0 and profile.language == fallback):
            best, best_score = profile.language, score
    return best


@lru_cache(maxsize=64)
def _letter_class(letters: str) -> re.Pattern[str]:
    """Both cases of each typical letter, never a multi-character case mapping (İ → i̇)."""
    chars = set(letters)
    chars |= {c.upper() for c in letters if len(c.upper()) == 1}
    chars |= {c.lower() for c in letters if len(c.lower()) == 1}
    return re.compile("[" + re.escape("".join(sorted(chars))) + "]")
