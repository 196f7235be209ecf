"""Reads the supervisors' rule files from the rules folder; checking them is the core's job.

Which files are routing files: `routing.toml`, then every `routing-<name>.toml` in name order. Their
rules are tried in that order, file after file. The reading files (`orders.toml`, `scripts.toml`,
`lexicons/*.toml`) are parsed by `adapters/lexicons.py`, but they decide what the rules see (the
intent, the order numbers), so they are part of the rule-set version: a change to a lexicon is a
new version, like a change to a rule. Rule tests are the files `tests/*.toml`; the mails they use
live in `tests/mail/`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailbot.core.errors import RuleFileError
from mailbot.core.rules.expectations import RuleTest, parse_rule_tests, snippet_message
from mailbot.core.rules.schema import RuleSet, RuleSetErrors, RuleSource, parse_ruleset, ruleset_version

ROUTING_FILE = "routing.toml"
ROUTING_EXTRA_GLOB = "routing-*.toml"
ORDERS_FILE = "orders.toml"
SCRIPTS_FILE = "scripts.toml"
LEXICONS_DIR = "lexicons"
TESTS_DIR = "tests"
MAX_RULE_FILE_BYTES = 1_000_000
MAX_TEST_MAIL_BYTES = 25 * 1024 * 1024


def routing_files(rules_dir: Path) -> list[Path]:
    """The routing files in the order their rules are tried."""
    main = rules_dir / ROUTING_FILE
    extra = sorted(p for p in rules_dir.glob(ROUTING_EXTRA_GLOB) if p.is_file())
    return ([main] if main.is_file() else []) + extra


def read_routing_sources(rules_dir: Path) -> list[RuleSource]:
    """The text of every routing file; RuleSetErrors when the folder or main file is missing or unreadable."""
    if not rules_dir.is_dir():
        raise RuleSetErrors([RuleFileError(str(rules_dir), None, None, "the rules folder does not exist")])
    if not (rules_dir / ROUTING_FILE).is_file():
        raise RuleSetErrors(
            [RuleFileError(str(rules_dir / ROUTING_FILE), None, None, "the main routing file is missing")]
        )
    return _read_sources(routing_files(rules_dir))


def _read_sources(paths: list[Path]) -> list[RuleSource]:
    sources, errors = [], []
    for path in paths:
        try:
            sources.append(RuleSource(str(path), _read_text(path)))
        except RuleFileError as error:
            errors.append(error)
    if errors:
        raise RuleSetErrors(errors)
    return sources


def _reading_paths(rules_dir: Path) -> list[Path]:
    """The files that shape how a mail is read: `orders.toml`, `scripts.toml` and the lexicons."""
    lexicons = rules_dir / LEXICONS_DIR
    found = [p for p in (rules_dir / ORDERS_FILE, rules_dir / SCRIPTS_FILE) if p.is_file()]
    return found + (sorted(p for p in lexicons.glob("*.toml") if p.is_file()) if lexicons.is_dir() else [])


def read_reading_sources(rules_dir: Path) -> list[RuleSource]:
    """The text of every reading file, for the version; RuleSetErrors when one cannot be read."""
    return _read_sources(_reading_paths(rules_dir))


def routing_version(rules_dir: Path) -> str | None:
    """The version the rule files would have, without checking them; None if unreadable."""
    try:
        sources = [*read_routing_sources(rules_dir), *read_reading_sources(rules_dir)]
    except RuleSetErrors:
        return None
    return ruleset_version(sources)


def load_ruleset(
    rules_dir: Path,
    *,
    known_templates: frozenset[str] | None = None,
    known_mailboxes: frozenset[str] | None = None,
) -> RuleSet:
    """The checked rule set in `rules_dir`; RuleSetErrors naming file, line and key for every mistake."""
    return parse_ruleset(
        read_routing_sources(rules_dir),
        known_templates=known_templates,
        known_mailboxes=known_mailboxes,
        versioned_with=read_reading_sources(rules_dir),
    )


def rule_test_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in (rules_dir / TESTS_DIR).glob("*.toml") if p.is_file())


def load_rule_tests(
    rules_dir: Path,
    *,
    known_templates: frozenset[str] | None = None,
    known_mailboxes: frozenset[str] | None = None,
) -> list[RuleTest]:
    """Every rule test with its message bytes; RuleSetErrors listing the mistakes of every test file."""
    tests: list[RuleTest] = []
    errors: list[RuleFileError] = []
    for path in rule_test_files(rules_dir):
        try:
            parsed = parse_rule_tests(
                RuleSource(str(path), _read_text(path)),
                known_templates=known_templates,
                known_mailboxes=known_mailboxes,
            )
        except RuleFileError as error:
            errors.append(error)
            continue
        except RuleSetErrors as problems:
            errors.extend(problems.errors)
            continue
        for test in parsed:
            if test.eml is None:
                tests.append(replace(test, raw=snippet_message(test)))
                continue
            mail = rules_dir / test.eml
            if not mail.is_file():
                errors.append(
                    RuleFileError(test.path, test.line, "eml", f"test '{test.name}': no mail file {mail}")
                )
                continue
            if mail.stat().st_size > MAX_TEST_MAIL_BYTES:
                errors.append(
                    RuleFileError(
                        test.path, test.line, "eml", f"test '{test.name}': {mail} is larger than 25 MB"
                    )
                )
                continue
            tests.append(replace(test, raw=mail.read_bytes()))
    if errors:
        raise RuleSetErrors(errors)
    return tests


def _read_text(path: Path) -> str:
    """A rule file as text. Raises RuleFileError, with the line, for a file that is not UTF-8."""
    size = path.stat().st_size
    if size > MAX_RULE_FILE_BYTES:
        raise RuleFileError(str(path), None, None, f"the file is {size} bytes; rule files are at most 1 MB")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleFileError(
            str(path), line, None, "the file is not UTF-8 text; save it as UTF-8 in your editor"
        ) from None


def corpus_messages(corpus_dir: Path) -> list[tuple[str, bytes]]:
    """Every `.eml` file under `corpus_dir` (searched recursively), as (path relative to it, bytes), by name.

    Files larger than a mailbox would accept are skipped rather than read into memory.
    """
    found = []
    for path in sorted(corpus_dir.rglob("*.eml")):
        if path.is_file() and path.stat().st_size <= MAX_TEST_MAIL_BYTES:
            found.append((path.relative_to(corpus_dir).as_posix(), path.read_bytes()))
    return found


def reading_files(rules_dir: Path) -> dict[str, bytes]:
    """The files that say how mail is read (orders.toml, lexicons/*.toml), by path relative to the folder.

    A replay compares a draft's with the live ones to know whether the mail must be read again.
    """
    return {p.relative_to(rules_dir).as_posix(): p.read_bytes() for p in _reading_paths(rules_dir)}
