"""A routing rule set: what supervisors write in rules/routing*.toml, checked and ready to evaluate.

Parsing is pure (text in, `RuleSet` out) so the same checks serve `mailbot rules check`, the worker's
hot reload and a web form. Every mistake becomes a `RuleFileError` naming the file, the line and the
key, phrased for a supervisor, with "did you mean …?" for a misspelt name. All mistakes are collected
before anything is raised, so one run of `rules check` lists them all.

A rule set's `version` is the SHA-256 of its files' names and contents: the same files always give
the same version, and every decision stores the version that made it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Protocol

from mailbot.core.errors import RuleFileError
from mailbot.core.rules.positions import Path, key_lines, line_of
from mailbot.core.rules.predicates import (
    PREDICATES,
    Check,
    PredicateRegistry,
    ValueProblem,
    Vocabulary,
    suggestion,
)
from mailbot.core.types import TraceStep

PRIORITIES = ("low", "normal", "high", "urgent")

#: Actions a rule may take, with the line supervisors read about each.
ACTIONS: Mapping[str, str] = {
    "category": "File the mail under this category (lowercase, like report_dispute).",
    "priority": "How urgent the case is: low, normal, high or urgent.",
    "queue": "The queue or team that handles the case.",
    "assignee": "The person the case is assigned to.",
    "reply": "Answer with this reply template, or false for no reply.",
    "tags": "Labels for the case; the tags of every matching rule add up.",
    "ignore": "Record the mail and do nothing else; the text is the reason staff see.",
    "quarantine": "Set the mail aside for a person to look at; the text is the reason staff see.",
}

#: Keys of one [[rule]], with what each is for.
RULE_KEYS: Mapping[str, str] = {
    "name": "A short unique name; it appears in every decision's trace.",
    "description": "Why the rule exists, for the next person who reads the file.",
    "enabled": "false switches the rule off without deleting it.",
    "when": "Conditions that must all hold.",
    "unless": "Conditions of which none may hold.",
    "then": "What to do with the mail.",
    "continue": "true: after this rule, keep looking at the rules below it.",
}

#: Top-level sections of a routing file.
FILE_KEYS: Mapping[str, str] = {
    "rule": "One [[rule]] section per rule, in the order they are tried.",
    "word_lists": "Named lists of words and phrases for the word_list condition.",
}

_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*\Z")
_TEMPLATE = re.compile(r"[a-z][a-z0-9_]*\Z")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


@dataclass(frozen=True)
class RuleSource:
    """One routing file as read: the path shown in errors, and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Condition:
    predicate: str
    shown: str  # the condition as written, e.g. 'intent = ["cancellation"]'
    check: Check = field(compare=False, repr=False)


@dataclass(frozen=True)
class RuleActions:
    """What one rule says to do; None means the rule does not say."""

    category: str | None = None
    priority: str | None = None
    queue: str | None = None
    assignee: str | None = None
    reply: str | None = None  # a template name
    no_reply: bool = False  # reply = false
    tags: tuple[str, ...] = ()
    ignore: str | None = None
    quarantine: str | None = None

    def describe(self) -> str:
        """The actions as the trace shows them, e.g. 'category cancellation, reply cancellation_received'."""
        parts = []
        for name in ("category", "priority", "queue", "assignee"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value}")
        if self.reply is not None:
            parts.append(f"reply {self.reply}")
        if self.no_reply:
            parts.append("no reply")
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        if self.ignore is not None:
            parts.append(f"ignore ({self.ignore})")
        if self.quarantine is not None:
            parts.append(f"quarantine ({self.quarantine})")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Rule:
    name: str
    when: tuple[Condition, ...]
    actions: RuleActions
    unless: tuple[Condition, ...] = ()
    continues: bool = False
    enabled: bool = True
    description: str = ""
    source: str = ""
    line: int = 0
    # The trace steps of this rule's usual misses ("subject does not match /…/"), built once: a
    # thousand rules placed first would otherwise build a thousand equal steps for every mail.
    miss_steps: dict[str, TraceStep] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # SHA-256 hex of the files' names and contents
    files: tuple[tuple[str, str], ...] = ()  # (file name, SHA-256 of its text), in load order
    word_lists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sources: tuple[RuleSource, ...] = field(default=(), compare=False, repr=False)

    @property
    def short_version(self) -> str:
        return self.version[:12]

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def file_texts(self) -> dict[str, str]:
        """File name → text, the form in which a rule-set version is kept with the decisions it made."""
        return {_file_name(s.path): s.text for s in self.sources}


def _file_name(path: str) -> str:
    """The name a rule file is shown and kept under: `routing.toml`, `orders.toml`, `lexicons/en.toml`,
    and for the reply templates versioned with the rules `templates/en/acknowledgement.txt.j2`."""
    pure = PurePath(path)
    if pure.name.endswith(".j2"):
        return f"templates/{pure.parent.name}/{pure.name}"
    return f"{pure.parent.name}/{pure.name}" if pure.parent.name == "lexicons" else pure.name


class RuleSetErrors(Exception):
    """Every mistake found in a rule set (at least one). An invalid set is never used."""

    def __init__(self, errors: Sequence[RuleFileError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def ruleset_version(sources: Iterable[RuleSource]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        name = _file_name(source.path) if source.path.endswith(".j2") else PurePath(source.path).name
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(source.text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def parse_ruleset(
    sources: Sequence[RuleSource],
    *,
    known_templates: frozenset[str] | None = None,
    known_mailboxes: frozenset[str] | None = None,
    predicates: PredicateRegistry = PREDICATES,
    versioned_with: Sequence[RuleSource] = (),
) -> RuleSet:
    """Check routing files and build the rule set they describe; raise RuleSetErrors listing every mistake.

    `known_templates` / `known_mailboxes`: the names that exist; None when the caller cannot know
    them (then any well-formed name is accepted). `versioned_with`: files checked elsewhere (the
    lexicons) that are part of the version and kept with it, because they change decisions too.
    """
    parser = _Parser(known_templates, known_mailboxes, predicates)
    documents = [(source, parser.load(source)) for source in sources]
    loaded = [(source, data, lines) for source, (data, lines) in documents if data is not None]
    for source, data, lines in loaded:
        parser.top_level(source, data, lines)
        parser.word_lists(source, data, lines)
    vocabulary = Vocabulary(mailboxes=known_mailboxes, word_lists=dict(parser.lists))
    rules: list[Rule] = []
    for source, data, lines in loaded:
        rules.extend(parser.rules(source, data, lines, vocabulary))
    if not sources:
        parser.error("routing.toml", None, None, "there is no routing file")
    elif not rules and not parser.errors:
        parser.error(sources[0].path, 1, None, "there are no rules; add at least one [[rule]] section")
    if parser.errors:
        raise RuleSetErrors(parser.errors)
    every = (*sources, *versioned_with)
    return RuleSet(
        rules=tuple(rules),
        version=ruleset_version(every),
        files=tuple((_file_name(s.path), hashlib.sha256(s.text.encode("utf-8")).hexdigest()) for s in every),
        word_lists=tuple(parser.lists.items()),
        sources=every,
    )


class _Parser:
    def __init__(
        self,
        known_templates: frozenset[str] | None,
        known_mailboxes: frozenset[str] | None,
        predicates: PredicateRegistry,
    ) -> None:
        self.known_templates = known_templates
        self.known_mailboxes = known_mailboxes
        self.predicates = predicates
        self.errors: list[RuleFileError] = []
        self.lists: dict[str, tuple[str, ...]] = {}
        self.list_lines: dict[str, str] = {}
        self.names: dict[str, str] = {}  # rule name -> "file:line" of its first definition

    def error(self, path: str, line: int | None, key: str | None, message: str) -> None:
        self.errors.append(RuleFileError(path, line, key, message))

    # -- files ------------------------------------------------------------------------------------

    def load(self, source: RuleSource) -> tuple[dict[str, Any] | None, dict[Path, int]]:
        try:
            data = tomllib.loads(source.text)
        except tomllib.TOMLDecodeError as exc:
            line, message = toml_problem(str(exc), source.text)
            self.error(source.path, line, None, message)
            return None, {}
        return data, key_lines(source.text)

    def top_level(self, source: RuleSource, data: dict[str, Any], lines: dict[Path, int]) -> None:
        for key in data:
            if key in FILE_KEYS:
                continue
            close = suggestion(key, FILE_KEYS)
            hint = close if "did you mean" in close else _misplaced(key, self.predicates) or close
            self.error(source.path, line_of(lines, (key,)), key, f"unknown section '{key}'{hint}")

    def word_lists(self, source: RuleSource, data: dict[str, Any], lines: dict[Path, int]) -> None:
        value = data.get("word_lists")
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(
                source.path,
                line_of(lines, ("word_lists",)),
                "word_lists",
                'expected a section [word_lists] with lines like name = ["word", "phrase"]',
            )
            return
        for name, words in value.items():
            line = line_of(lines, ("word_lists", name))
            key = f"word_lists.{name}"
            if name in self.lists:
                self.error(
                    source.path,
                    line,
                    key,
                    f"word list '{name}' is already defined at {self.list_lines[name]}",
                )
                continue
            ok = isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)
            if not ok:
                self.error(
                    source.path,
                    line,
                    key,
                    'expected a non-empty list of words or phrases, like ["lawyer", "court"]',
                )
                continue
            self.lists[name] = tuple(w.strip() for w in words)
            self.list_lines[name] = f"{source.path}:{line}"

    # -- rules ------------------------------------------------------------------------------------

    def rules(
        self, source: RuleSource, data: dict[str, Any], lines: dict[Path, int], vocabulary: Vocabulary
    ) -> list[Rule]:
        value = data.get("rule", [])
        if isinstance(value, dict):
            self.error(
                source.path,
                line_of(lines, ("rule",)),
                "rule",
                "each rule starts with [[rule]] (two square brackets), not [rule]",
            )
            return []
        if not isinstance(value, list):
            self.error(source.path, line_of(lines, ("rule",)), "rule", "expected [[rule]] sections")
            return []
        built = []
        for index, raw in enumerate(value):
            rule = self.rule(source, index, raw, lines, vocabulary)
            if rule is not None:
                built.append(rule)
        return built

    def rule(
        self, source: RuleSource, index: int, raw: Any, lines: dict[Path, int], vocabulary: Vocabulary
    ) -> Rule | None:
        at: Path = ("rule", index)
        header = line_of(lines, at) or 1
        if not isinstance(raw, dict):
            self.error(source.path, header, "rule", "expected a [[rule]] section")
            return None
        before = len(self.errors)

        def fail(key: str | None, message: str, path: Path | None = None) -> None:
            line = line_of(lines, (*at, *path)) if path is not None else header
            self.error(source.path, line, key, f"{label}: {message}")

        name = raw.get("name")
        label = f"rule #{index + 1}"
        if name is None:
            fail("name", "missing required key 'name' (every rule needs a short unique name)")
        elif not isinstance(name, str) or not name.strip():
            fail("name", "the name must be a non-empty text", ("name",))
        else:
            name = name.strip()
            label = f"rule '{name}'"
            if not _RULE_NAME.fullmatch(name):
                fixed = re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-") or "my-rule"
                fail(
                    "name",
                    f"use letters, digits, - and _ in rule names, without spaces (like {fixed})",
                    ("name",),
                )
            elif name in self.names:
                fail("name", f"another rule already has this name (at {self.names[name]})", ("name",))
            else:
                self.names[name] = f"{source.path}:{line_of(lines, (*at, 'name')) or header}"

        for key in raw:
            if key not in RULE_KEYS:
                hint = _misplaced(key, self.predicates) or suggestion(key, RULE_KEYS)
                fail(key, f"unknown key '{key}'{hint}", (key,))
        description = _optional(raw, "description", str, "a text", fail) or ""
        enabled = _optional(raw, "enabled", bool, "true or false", fail)
        continues = _optional(raw, "continue", bool, "true or false", fail)

        when = self.conditions(raw, "when", fail, vocabulary)
        unless = self.conditions(raw, "unless", fail, vocabulary)
        actions = self.actions(raw, fail)
        if (
            actions is not None
            and continues
            and (actions.ignore is not None or actions.quarantine is not None)
        ):
            kind = "ignore" if actions.ignore is not None else "quarantine"
            fail(
                "continue",
                f"'{kind}' ends the decision, so it cannot be combined with continue = true",
                ("continue",),
            )
        if len(self.errors) > before or actions is None or not isinstance(name, str):
            return None
        return Rule(
            name=name,
            when=when,
            unless=unless,
            actions=actions,
            continues=bool(continues),
            enabled=enabled is not False,
            description=description.strip(),
            source=source.path,
            line=header,
        )

    def conditions(
        self, raw: dict[str, Any], part: str, fail: _Fail, vocabulary: Vocabulary
    ) -> tuple[Condition, ...]:
        value = raw.get(part)
        if value is None:
            return ()
        if not isinstance(value, dict):
            fail(
                part,
                f'expected conditions, like {part}.intent = "cancellation" or a [rule.{part}] section',
                (part,),
            )
            return ()
        built = []
        for key, item in value.items():
            predicate = self.predicates.get(key)
            if predicate is None:
                hint = ""
                if key in ACTIONS:
                    hint = f"; '{key}' is an action: put it under then (then.{key} = …)"
                fail(
                    f"{part}.{key}",
                    f"unknown condition '{key}'{hint or suggestion(key, self.predicates.names())}",
                    (part, key),
                )
                continue
            try:
                check = predicate.build(item, vocabulary)
            except ValueProblem as problem:
                fail(f"{part}.{key}", problem.message, (part, key, *problem.at))
                continue
            built.append(Condition(predicate=key, shown=f"{key} = {_toml(item)}", check=check))
        return tuple(built)

    def actions(self, raw: dict[str, Any], fail: _Fail) -> RuleActions | None:
        value = raw.get("then")
        if value is None:
            fail(
                "then",
                "missing required key 'then': say what the rule does, like then.category = \"cancellation\"",
            )
            return None
        if not isinstance(value, dict):
            fail(
                "then",
                'expected actions, like then.category = "cancellation" or a [rule.then] section',
                ("then",),
            )
            return None
        if not value:
            fail("then", "the rule does nothing: give it at least one action", ("then",))
            return None
        ok = True

        def bad(key: str, message: str, *inner: str | int) -> None:
            nonlocal ok
            ok = False
            fail(f"then.{key}", message, ("then", key, *inner))

        for key in value:
            if key not in ACTIONS:
                hint = ""
                if self.predicates.get(key) is not None:
                    hint = f"; '{key}' is a condition: put it under when (when.{key} = …)"
                bad(key, f"unknown action '{key}'{hint or suggestion(key, ACTIONS)}")

        def text(key: str) -> str | None:
            item = value.get(key)
            if item is None:
                return None
            if not isinstance(item, str) or not item.strip():
                bad(key, f"expected a non-empty text, got {_kind(item)}")
                return None
            return item.strip()

        category = text("category")
        if category is not None and not _CATEGORY.fullmatch(category):
            bad(
                "category",
                f"'{category}' is not a category name; use lowercase letters, digits and _ "
                f"(like {re.sub(r'[^a-z0-9_]+', '_', category.lower()).strip('_') or 'report_dispute'})",
            )
        priority = text("priority")
        if priority is not None and priority not in PRIORITIES:
            bad("priority", f"unknown priority '{priority}'{suggestion(priority, PRIORITIES)}")
        reply, no_reply = self.reply(value.get("reply"), bad)
        tags = _tags(value.get("tags"), bad)
        actions = RuleActions(
            category=category,
            priority=priority,
            queue=text("queue"),
            assignee=text("assignee"),
            reply=reply,
            no_reply=no_reply,
            tags=tags,
            ignore=text("ignore"),
            quarantine=text("quarantine"),
        )
        if actions.ignore is not None and actions.quarantine is not None:
            bad("quarantine", "a rule can ignore a mail or quarantine it, not both")
        for ending in ("ignore", "quarantine"):
            if getattr(actions, ending) is not None and actions.reply is not None:
                bad("reply", f"an ignored or quarantined mail is never answered: remove reply or {ending}")
        return actions if ok else None

    def reply(self, item: Any, bad: Any) -> tuple[str | None, bool]:
        if item is None:
            return None, False
        if item is False:
            return None, True
        if item is True:
            bad("reply", "give the name of a reply template, or false for no reply")
            return None, False
        if not isinstance(item, str) or not item.strip():
            bad("reply", f"expected the name of a reply template or false, got {_kind(item)}")
            return None, False
        name = item.strip()
        if name.endswith(".txt.j2"):
            bad(
                "reply", f"write the template name without folder or ending: '{name.removesuffix('.txt.j2')}'"
            )
            return None, False
        if not _TEMPLATE.fullmatch(name):
            bad("reply", f"'{name}' is not a template name (lowercase letters, digits and _)")
            return None, False
        if self.known_templates is not None and name not in self.known_templates:
            bad("reply", f"no reply template named '{name}'{suggestion(name, self.known_templates)}")
            return None, False
        return name, False


class _Fail(Protocol):
    """The per-rule error callback: `key`, the message, and the path inside the rule that is wrong."""

    def __call__(self, key: str | None, message: str, path: Path | None = None) -> None: ...


def _optional(raw: dict[str, Any], key: str, kind: type, described: str, fail: Any) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    fail(key, f"expected {described}, got {_kind(value)}", (key,))
    return None


def _tags(item: Any, bad: Any) -> tuple[str, ...]:
    if item is None:
        return ()
    values = [item] if isinstance(item, str) else item
    if not isinstance(values, list) or not values:
        bad("tags", f'expected a list of tags, like ["vip"], got {_kind(item)}')
        return ()
    tags = []
    for index, tag in enumerate(values):
        if not isinstance(tag, str) or not tag.strip():
            bad(
                "tags",
                f"expected a non-empty text, got {_kind(tag)}",
                *((index,) if isinstance(item, list) else ()),
            )
            continue
        tags.append(tag.strip())
    return tuple(dict.fromkeys(tags))


def _misplaced(key: str, predicates: PredicateRegistry) -> str:
    """A hint for a condition or action written directly in the rule (or the file) instead of its section."""
    if predicates.get(key) is not None:
        return f"; '{key}' is a condition: put it under when (when.{key} = …)"
    if key in ACTIONS:
        return f"; '{key}' is an action: put it under then (then.{key} = …)"
    return ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "empty text" if not value.strip() else f"text ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _toml(value: Any) -> str:
    """A value written back the way TOML shows it, for traces and `rules check` output."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


#: tomllib's messages, said the way a supervisor needs to hear them.
_TOML_HINTS = (
    ("Cannot overwrite a value", "this key is set twice (each rule starts with its own [[rule]] line)"),
    ("Cannot declare", "this section is declared twice"),
    ("Invalid value", 'a value is missing or malformed (text needs quotes: "like this")'),
    ("Expected '=' after a key", "expected '=' after the key (key = value)"),
    ("Unclosed array", "a list is not closed with ]"),
    ("Unclosed inline table", "a { … } table is not closed with } (it must fit on one line)"),
    ("Illegal character '\\n'", "the text is not closed with a quote before the end of the line"),
    ("Unterminated string", "the text is not closed with a quote"),
    ("Unescaped '\\' in a string", "a backslash inside \"…\"; write patterns in single quotes: '\\d+'"),
    ("Invalid initial character for a key part", "a key is malformed, or a { … } table spans several lines"),
)


def toml_problem(message: str, text: str) -> tuple[int, str]:
    found = _TOML_POSITION.search(message)
    bare = _TOML_POSITION.sub("", message)
    if found and found.group(1):
        line = int(found.group(1))
    else:
        line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    hint = next((said for start, said in _TOML_HINTS if bare.startswith(start)), None)
    return line, f"TOML syntax: {hint} ({bare})" if hint else f"TOML syntax: {bare}"
