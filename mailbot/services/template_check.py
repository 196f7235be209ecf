"""Reply templates as part of the rule set: checked with it, versioned with it, reloaded with it.

A template decides what a buyer reads as much as a rule decides which template they get, so a
broken template is treated like a broken rule: `rules check` lists its problems with file and line,
the worker refuses to start on it, and hot reload keeps the last good rules *and* templates. The
templates' texts are part of the rule-set version, so every decision records which templates were
in charge (and the texts are kept with the version, like the rule files').
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from mailbot.adapters.macro_files import read_macros
from mailbot.adapters.ports import RenderedReply
from mailbot.adapters.rulefiles import read_reading_sources, read_routing_sources
from mailbot.adapters.template_files import TemplateFiles
from mailbot.adapters.templates import TemplateStore, read_template_files
from mailbot.core.errors import RuleFileError
from mailbot.core.rules.schema import RuleSet, RuleSetErrors, RuleSource, parse_ruleset, ruleset_version
from mailbot.services.casework import STAFF_STATUSES


def template_errors(store: TemplateStore) -> list[RuleFileError]:
    """Every problem of the templates, in the form rule problems take (file, line, message)."""
    return [RuleFileError(str(p.file), p.line, None, p.message) for p in store.validate()]


def macro_errors(store: TemplateStore) -> list[RuleFileError]:
    """The canned responses next to the templates (`macros/*.toml`), checked with them by `rules check`."""
    found = read_macros(store.files.root, templates=store.names(), statuses=STAFF_STATUSES)
    return [RuleFileError(str(p.file), p.line, None, p.message) for p in found.problems]


def template_sources(files: TemplateFiles | None) -> list[RuleSource]:
    """The templates as they enter the version. A file that could not be read still counts (marked),
    so that a broken file appearing is a change that gets checked and refused."""
    if files is None:
        return []
    refused = [RuleSource(str(files.path(name)), "\0refused\0") for name in sorted(files.refused)]
    return [*files.sources(), *refused]


def load_rules_and_templates(
    rules_dir: Path,
    files: TemplateFiles | None,
    *,
    known_templates: frozenset[str] | None,
    known_mailboxes: frozenset[str] | None,
) -> RuleSet:
    """The checked rule set, whose version and kept files include the templates in `files`.

    Raises RuleSetErrors listing the rule files' mistakes (not the templates'; see template_errors).
    """
    return parse_ruleset(
        read_routing_sources(rules_dir),
        known_templates=known_templates,
        known_mailboxes=known_mailboxes,
        versioned_with=[*read_reading_sources(rules_dir), *template_sources(files)],
    )


def files_version(rules_dir: Path, files: TemplateFiles | None) -> str | None:
    """The version the rule files and `files` would have, without checking them; None if unreadable."""
    try:
        sources = [*read_routing_sources(rules_dir), *read_reading_sources(rules_dir)]
    except RuleSetErrors:
        return None
    return ruleset_version([*sources, *template_sources(files)])


def version_on_disk(rules_dir: Path, templates_dir: Path | None) -> str | None:
    """`files_version` of what the folders hold now (for `rules status` in another process)."""
    files = read_template_files(templates_dir) if templates_dir is not None else None
    return files_version(rules_dir, files)


class TemplatesInCharge:
    """The `ReplyRenderer` the worker hands to ingest: renders with the templates in charge now.

    `current` returns the pinned store of the last good set; a broken edit never reaches it.
    """

    def __init__(self, current: Callable[[], TemplateStore]) -> None:
        self._current = current

    def render(self, template: str, language: str, context: Mapping[str, object]) -> RenderedReply:
        return self._current().render(template, language, context)
