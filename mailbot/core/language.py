"""The language a person wrote in, offline and in microseconds, from data that ships with the rules.

The script decides first: kana means Japanese, Han without kana Chinese, Hangul Korean, Arabic
letters Arabic, Cyrillic Russian. Among Latin-script languages, short frequent words
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

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Scripts written without spaces are counted by character, not by word.
_UNSPACED_SCRIPTS = {
    "kana": re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"),
    "han": re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]"),
    "hangul": re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"),
    "thai": re.compile("[\u0e00-\u0e7f]"),
}
_URL_OR_ADDRESS = re.compile(r"(?i)\bhttps?://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Which language a script points to, when that language is allowed.
_SCRIPT_LANGUAGE = {
    "kana": "ja",
    "han": "zh",
    "hangul": "ko",
    "arabic": "ar",
    "cyrillic": "ru",
    "greek": "el",
    "hebrew": "he",
    "thai": "th",
    "devanagari": "hi",
}


# The first few thousand characters say which language a mail is in as well as the whole would.
_MAX_CHARS = 4000


@dataclass(frozen=True)
class LanguageProfile:
    """What a language's lexicon file says about recognising it."""

    language: str
    stopwords: frozenset[str]
    letters: str = ""
    suffixes: tuple[str, ...] = ()  # word endings typical of the language: Turkish -iyor, Spanish -ción


def _script(char: str) -> str:
    code = ord(char)
    if code < 0x250:
        return "latin"
    if 0x1E00 <= code <= 0x1EFF:  # Latin Extended Additional: Vietnamese ạ ả ấ ...
        return "latin"
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or code >= 0x20000:
        return "han"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if (
        0x0600 <= code <= 0x06FF
        or 0x0750 <= code <= 0x077F
        or 0xFB50 <= code <= 0xFDFF
        or 0xFE70 <= code <= 0xFEFF
    ):
        return "arabic"
    if 0x0400 <= code <= 0x052F:
        return "cyrillic"
    if 0x0370 <= code <= 0x03FF:
        return "greek"
    if 0x0590 <= code <= 0x05FF:
        return "hebrew"
    if 0x0E00 <= code <= 0x0E7F:
        return "thai"
    if 0x0900 <= code <= 0x097F:
        return "devanagari"
    return "other"


def detect_language(text: str, allowed: tuple[str, ...], profiles: Iterable[LanguageProfile]) -> str:
    """ISO 639-1 code of the dominant language of `text`, chosen among `allowed`."""
    fallback = "en" if "en" in allowed or not allowed else allowed[0]
    cleaned = _URL_OR_ADDRESS.sub(" ", text[:_MAX_CHARS])
    words = [w.lower() for w in _WORD.findall(cleaned)]
    if not words:
        return fallback
    counts = {script: len(pattern.findall(cleaned)) for script, pattern in _UNSPACED_SCRIPTS.items()}
    by_script: dict[str, int] = {}
    for word in words:
        script = _script(word[0])
        if script not in _UNSPACED_SCRIPTS and (len(word) > 1 or script != "latin"):
            by_script[script] = by_script.get(script, 0) + 1
    # Compare scripts in "words": ideographs carry about half a word each.
    weight = {
        "latin": float(by_script.get("latin", 0)),
        "han": counts["han"] / 2,
        "kana": counts["kana"] / 2,
        "hangul": counts["hangul"] / 2,
        "thai": counts["thai"] / 4,
    }
    for script in ("arabic", "cyrillic", "greek", "hebrew", "devanagari"):
        weight[script] = float(by_script.get(script, 0))
    cjk = weight["han"] + weight["kana"]
    dominant = max(weight, key=lambda s: weight[s])
    if cjk >= weight[dominant] and cjk > 0:
        kana = counts.get("kana", 0)
        dominant = "kana" if kana >= max(2, 0.05 * (counts.get("han", 0) + kana)) else "han"
        if dominant == "kana" and "ja" not in allowed and "zh" in allowed:
            dominant = "han"
    if dominant != "latin":
        language = _SCRIPT_LANGUAGE.get(dominant)
        if language is not None and language in allowed:
            return _within_script(language, words, dominant, allowed, profiles)
        if weight["latin"] == 0:
            return fallback
    return _latin(words, cleaned, allowed, profiles, fallback)


def _within_script(
    language: str,
    words: list[str],
    script: str,
    allowed: tuple[str, ...],
    profiles: Iterable[LanguageProfile],
) -> str:
    """Several allowed languages may share a script (ru / uk / bg); their stopwords decide."""
    rivals = [p for p in profiles if p.language in allowed and p.language != language and p.stopwords]
    rivals = [p for p in rivals if any(_script(w[0]) == script for w in p.stopwords if w)]
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
