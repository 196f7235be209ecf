"""Reads rules/orders.toml, rules/scripts.toml and rules/lexicons/*.toml into the core's ReadingConfig.

The files are edited by supervisors, so every mistake is reported as a RuleFileError naming the
file, the line and the key ("rules/lexicons/fr.toml:12: intents.cancellation.phrases: expected a
list of strings"), and unknown keys are errors too: a misspelt section would otherwise be
silently ignored. Reading files is I/O, which is why this lives in adapters and not in the core.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mailbot.adapters.attachment_text import AttachmentTextReader
from mailbot.core.attachments import AttachmentLimits, AttachmentReading
from mailbot.core.automation import AutomationConfig
from mailbot.core.bounded_patterns import PatternProblem, bounded
from mailbot.core.errors import RuleFileError
from mailbot.core.intent import TOPICAL, IntentLexicon
from mailbot.core.language import LanguageProfile
from mailbot.core.orders import OrderConfig
from mailbot.core.phrases import Phrase
from mailbot.core.reading import ReadingConfig
from mailbot.core.rules.schema import toml_problem
from mailbot.core.scripts import Script, Scripts
from mailbot.core.subjects import SubjectPrefixes
from mailbot.core.types import Intent

_PHRASE_INTENTS = {i.value for i in (*TOPICAL, Intent.SPAM)}
_MACHINE_INTENTS = {Intent.FOLLOW_UP.value, Intent.AUTO_REPLY.value, Intent.BOUNCE.value}
_FORMAT_INTS = (
    "min_digits",
    "max_digits",
    "typical_min",
    "typical_max",
    "max_group",
    "window_before",
    "window_after",
    "max_candidates",
)
_FORMAT_LISTS = ("prefixes", "url_params")


class _Source:
    """One TOML file: its parsed data plus a map from dotted keys to line numbers."""

    def __init__(self, path: Path, shown: str) -> None:
        self.shown = shown
        try:
            self.text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleFileError(shown, None, None, f"cannot read the file: {exc}") from exc
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            line, message = toml_problem(str(exc), self.text)
            raise RuleFileError(shown, line, None, message) from None
        self.lines = _key_lines(self.text)

    def error(self, key: str, message: str, item: object = None) -> RuleFileError:
        line = self.line_of(key)
        if item is not None and line is not None:
            needle = str(item) if not isinstance(item, dict) else str(next(iter(item.values()), ""))
            for number, text in enumerate(self.text.splitlines()[line - 1 :], start=line):
                if needle and needle in text:
                    line = number
                    break
        return RuleFileError(self.shown, line, key, message)

    def line_of(self, key: str) -> int | None:
        parts = key.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found is not None:
                return found
            parts.pop()
        return None


def _key_lines(text: str) -> dict[str, int]:
    """Dotted key → line number, by a small scan of table headers and `key =` lines."""
    lines: dict[str, int] = {}
    table = ""
    arrays: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            name = line.strip("[] ").strip()
            arrays[name] = arrays.get(name, -1) + 1
            table = f"{name}[{arrays[name]}]"
            lines.setdefault(table, number)
            lines.setdefault(name, number)
        elif line.startswith("["):
            table = line.strip("[] ").strip()
            lines.setdefault(table, number)
        else:
            match = re.match(r"^([A-Za-z0-9_\-\"'. ]+?)\s*=", line)
            if match:
                key = match.group(1).strip().strip("\"'")
                lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


def _strings(source: _Source, key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise source.error(key, "expected a list of strings")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise source.error(key, f"expected a list of strings, found {item!r}", item)
    return tuple(value)


def _table(source: _Source, key: str, value: object, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise source.error(key, "expected a section")
    for name in value:
        if name not in allowed:
            expected = ", ".join(sorted(allowed))
            raise source.error(f"{key}.{name}" if key else name, f"unknown key (expected one of: {expected})")
    return value


def _orders_file(source: _Source) -> dict[str, Any]:
    data = _table(source, "", source.data, {"format", "decoy_patterns", "digit_patterns"})
    fmt = _table(source, "format", data.get("format"), {*_FORMAT_INTS, *_FORMAT_LISTS})
    values: dict[str, Any] = {}
    for name in _FORMAT_INTS:
        if name in fmt:
            number = fmt[name]
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise source.error(f"format.{name}", f"expected a whole number, found {number!r}")
            values[name] = number
    if values.get("max_candidates", 1) < 1:
        raise source.error("format.max_candidates", "expected at least 1 (the numbers judged per mail)")
    if values.get("min_digits", 12) > values.get("max_digits", 20):
        raise source.error("format.min_digits", "min_digits is larger than max_digits")
    if "prefixes" in fmt:
        values["prefixes"] = tuple(p.lower() for p in _strings(source, "format.prefixes", fmt["prefixes"]))
    if "url_params" in fmt:
        values["url_params"] = tuple(
            p.lower() for p in _strings(source, "format.url_params", fmt["url_params"])
        )
    for section in ("decoy_patterns", "digit_patterns"):
        entries = data.get(section, [])
        if not isinstance(entries, list):
            raise source.error(section, "expected [[" + section + "]] entries with name and regex")
        patterns = []
        for index, raw_entry in enumerate(entries):
            key = f"{section}[{index}]"
            entry = _table(source, key, raw_entry, {"name", "regex"})
            pattern_name, regex = entry.get("name"), entry.get("regex")
            if not isinstance(pattern_name, str) or not pattern_name.strip():
                raise source.error(f"{key}.name", "expected a short description (a string)")
            if not isinstance(regex, str) or not regex:
                raise source.error(f"{key}.regex", "expected a regular expression (a string)")
            try:
                bounded(regex)
            except PatternProblem as problem:
                raise source.error(f"{key}.regex", problem.message) from None
            patterns.append((pattern_name, regex))
        values[section] = tuple(patterns)
    return values


def _phrases(source: _Source, key: str, value: object) -> Iterator[tuple[str, float]]:
    if not isinstance(value, list):
        raise source.error(key, "expected a list of phrases")
    for item in value:
        if isinstance(item, str) and item.strip():
            yield item, 1.0
        elif isinstance(item, dict):
            entry = _table(source, key, item, {"text", "weight"})
            text, weight = entry.get("text"), entry.get("weight", 1.0)
            if not isinstance(text, str) or not text.strip():
                raise source.error(key, f'a phrase needs text = "...", found {item!r}', item)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise source.error(key, f"weight must be a number of 0 or more, found {weight!r}", item)
            yield text, float(weight)
        else:
            raise source.error(
                key, f'expected a phrase or {{ text = "...", weight = 2 }}, found {item!r}', item
            )


class _Collected:
    def __init__(self) -> None:
        self.context: list[tuple[str, str]] = []
        self.decoys: list[tuple[str, str, str]] = []
        self.corrections: list[tuple[str, str]] = []
        self.ooo_subjects: list[tuple[str, str]] = []
        self.ooo_phrases: list[tuple[str, str]] = []
        self.bounce_subjects: list[tuple[str, str]] = []
        self.loop_subjects: list[tuple[str, str]] = []
        self.intents: list[Phrase] = []
        self.service: list[Phrase] = []
        self.profiles: list[LanguageProfile] = []
        self.languages: list[str] = []
        self.reply_prefixes: list[tuple[str, str]] = []
        self.forward_prefixes: list[tuple[str, str]] = []


def _lexicon_file(source: _Source, expected_language: str, out: _Collected) -> None:
    data = _table(
        source,
        "",
        source.data,
        {"language", "name", "detect", "subject", "orders", "automation", "service", "intents"},
    )
    language = data.get("language")
    if not isinstance(language, str) or language != expected_language:
        raise source.error("language", f'expected language = "{expected_language}" (the file name)')
    if "name" in data and not isinstance(data["name"], str):
        raise source.error("name", "expected the language's name (a string)")
    detect = _table(source, "detect", data.get("detect"), {"stopwords", "letters", "suffixes"})
    letters = detect.get("letters", "")
    if not isinstance(letters, str):
        raise source.error("detect.letters", "expected a string of letters")
    stopwords = frozenset(w.lower() for w in _strings(source, "detect.stopwords", detect.get("stopwords")))
    suffixes = tuple(w.lower() for w in _strings(source, "detect.suffixes", detect.get("suffixes")))
    out.profiles.append(LanguageProfile(language, stopwords, letters, suffixes))
    out.languages.append(language)

    subject = _table(source, "subject", data.get("subject"), {"reply_prefixes", "forward_prefixes"})
    for name, target in (("reply_prefixes", out.reply_prefixes), ("forward_prefixes", out.forward_prefixes)):
        target.extend((language, p) for p in _prefixes(source, f"subject.{name}", subject.get(name)))

    orders = _table(source, "orders", data.get("orders"), {"context", "corrections", "decoys"})
    out.context.extend((language, w) for w in _strings(source, "orders.context", orders.get("context")))
    out.corrections.extend(
        (language, w) for w in _strings(source, "orders.corrections", orders.get("corrections"))
    )
    decoys = orders.get("decoys") or {}
    if not isinstance(decoys, dict):
        raise source.error("orders.decoys", "expected a section of kind = [words]")
    for kind, words in decoys.items():
        out.decoys.extend((kind, language, w) for w in _strings(source, f"orders.decoys.{kind}", words))

    automation = _table(
        source,
        "automation",
        data.get("automation"),
        {"out_of_office_subjects", "out_of_office_phrases", "bounce_subjects", "loop_subjects"},
    )
    for name, target in (
        ("out_of_office_subjects", out.ooo_subjects),
        ("out_of_office_phrases", out.ooo_phrases),
        ("bounce_subjects", out.bounce_subjects),
        ("loop_subjects", out.loop_subjects),
    ):
        target.extend((language, w) for w in _strings(source, f"automation.{name}", automation.get(name)))

    service = _table(source, "service", data.get("service"), {"words"})
    out.service.extend(
        Phrase(word, "service", language) for word in _strings(source, "service.words", service.get("words"))
    )

    intents = data.get("intents") or {}
    if not isinstance(intents, dict):
        raise source.error("intents", "expected [intents.<name>] sections")
    for name, section in intents.items():
        key = f"intents.{name}"
        if name in _MACHINE_INTENTS:
            raise source.error(key, f"{name} is decided from headers and case references, not from phrases")
        if name not in _PHRASE_INTENTS:
            raise source.error(key, f"unknown intent (expected one of: {', '.join(sorted(_PHRASE_INTENTS))})")
        section = _table(source, key, section, {"phrases"})
        for text, weight in _phrases(source, f"{key}.phrases", section.get("phrases", [])):
            out.intents.append(Phrase(text, name, language, weight))


def _prefixes(source: _Source, key: str, value: object) -> tuple[str, ...]:
    """Subject prefixes are written without their colon ("re", "odp", "回复"): the colon is implied."""
    prefixes = _strings(source, key, value)
    for prefix in prefixes:
        if any(mark in prefix for mark in ":：[]"):
            raise source.error(key, f"write the prefix without ':' or a count, found {prefix!r}", prefix)
    return tuple(p.strip() for p in prefixes)


_SCRIPT_KEYS = {"ranges", "unspaced", "chars_per_word", "language"}
_RANGE = re.compile(r"^([0-9A-Fa-f]{4,6})(?:-([0-9A-Fa-f]{4,6}))?$")


def _scripts_file(source: _Source) -> Scripts:
    """rules/scripts.toml: one [scripts.<name>] section per writing system."""
    data = _table(source, "", source.data, {"scripts"})
    sections = _table(source, "scripts", data.get("scripts"), set(data.get("scripts") or {}))
    if not sections:
        raise source.error("scripts", "expected [scripts.<name>] sections with ranges")
    found: list[Script] = []
    for name, raw_section in sections.items():
        key = f"scripts.{name}"
        section = _table(source, key, raw_section, _SCRIPT_KEYS)
        ranges: list[tuple[int, int]] = []
        for text in _strings(source, f"{key}.ranges", section.get("ranges")):
            match = _RANGE.match(text.strip())
            low, high = (
                (int(match.group(1), 16), int(match.group(2) or match.group(1), 16)) if match else (1, 0)
            )
            if not match or low > high or high > 0x10FFFF:
                raise source.error(
                    f"{key}.ranges",
                    f'expected "FROM-TO" in hexadecimal (e.g. "0400-052F"), found {text!r}',
                    text,
                )
            ranges.append((low, high))
        if not ranges:
            raise source.error(f"{key}.ranges", "expected at least one range of code points")
        unspaced = section.get("unspaced", False)
        if not isinstance(unspaced, bool):
            raise source.error(f"{key}.unspaced", f"expected true or false, found {unspaced!r}")
        per_word = section.get("chars_per_word", 1)
        if isinstance(per_word, bool) or not isinstance(per_word, int | float) or per_word <= 0:
            raise source.error(f"{key}.chars_per_word", f"expected a number above 0, found {per_word!r}")
        language = section.get("language", "")
        if not isinstance(language, str):
            raise source.error(
                f"{key}.language", f'expected a language code such as "ja", found {language!r}'
            )
        found.append(Script(name, tuple(ranges), unspaced, float(per_word), language))
    _no_overlap(source, found)
    return Scripts(tuple(found))


def _no_overlap(source: _Source, scripts: list[Script]) -> None:
    """A code point in two scripts would belong to whichever sorts first: refused instead."""
    spans = sorted((low, high, s.name) for s in scripts for low, high in s.ranges)
    for (_, high, name), (low, _, other) in itertools.pairwise(spans):
        if low <= high:
            raise source.error(f"scripts.{other}.ranges", f"overlaps a range of scripts.{name} at {low:04X}")


DEFAULT_ATTACHMENT_LIMITS = AttachmentLimits()


def load_reading_config(
    rules_dir: Path, attachment_limits: AttachmentLimits = DEFAULT_ATTACHMENT_LIMITS
) -> ReadingConfig:
    """Build the ReadingConfig from a rules directory; raises RuleFileError on the first mistake.

    Attachments are read with `attachment_limits` (the `[limits]` settings where the caller has
    them; the defaults for tools that read mail without a configuration)."""
    orders_path = rules_dir / "orders.toml"
    order_values = _orders_file(_Source(orders_path, str(orders_path))) if orders_path.exists() else {}
    lexicon_dir = rules_dir / "lexicons"
    files = sorted(lexicon_dir.glob("*.toml")) if lexicon_dir.is_dir() else []
    if not files:
        raise RuleFileError(str(lexicon_dir), None, None, "no lexicon files (<language>.toml) found")
    scripts_path = rules_dir / "scripts.toml"
    if not scripts_path.is_file():
        # Without it Chinese phrases would be matched as whole words and kana not read as Japanese.
        raise RuleFileError(str(scripts_path), None, None, "the writing systems file is missing")
    scripts = _scripts_file(_Source(scripts_path, str(scripts_path)))
    out = _Collected()
    for path in files:
        _lexicon_file(_Source(path, str(path)), path.stem, out)
    orders = OrderConfig(
        **order_values,
        context_words=tuple(out.context),
        decoy_words=tuple(out.decoys),
        correction_words=tuple(out.corrections),
        scripts=scripts,
    )
    subjects = SubjectPrefixes(reply=tuple(out.reply_prefixes), forward=tuple(out.forward_prefixes))
    automation = AutomationConfig(
        out_of_office_subjects=tuple(out.ooo_subjects),
        out_of_office_phrases=tuple(out.ooo_phrases),
        bounce_subjects=tuple(out.bounce_subjects),
        loop_subjects=tuple(out.loop_subjects),
        subjects=subjects,
        scripts=scripts,
    )
    return ReadingConfig(
        orders=orders,
        automation=automation,
        intents=IntentLexicon(
            tuple(out.intents), service_words=tuple(out.service), subjects=subjects, scripts=scripts
        ),
        profiles=tuple(out.profiles),
        languages=tuple(out.languages),
        attachments=AttachmentReading(attachment_limits, AttachmentTextReader()),
        subjects=subjects,
        scripts=scripts,
    )
