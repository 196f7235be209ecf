"""Hot reload: the rule set (and reply templates) the worker uses, swapped only for a valid change, and
the status other processes read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbot.adapters.lexicons import DEFAULT_ATTACHMENT_LIMITS, load_reading_config
from mailbot.adapters.maildir import write_atomically
from mailbot.adapters.rulefiles import read_reading_sources, read_routing_sources
from mailbot.adapters.template_files import TemplateFiles, fingerprint
from mailbot.adapters.template_sandbox import DEFAULT_LIMITS, RenderLimits
from mailbot.adapters.templates import TemplateStore, read_template_files
from mailbot.core.attachments import AttachmentLimits
from mailbot.core.errors import RuleFileError
from mailbot.core.reading import ReadingConfig
from mailbot.core.rules.schema import RuleSet, RuleSetErrors
from mailbot.services.template_check import (
    TemplatesInCharge,
    files_version,
    load_rules_and_templates,
    template_errors,
)

log = logging.getLogger("mailbot.rules")

TemplateNames = frozenset[str] | Callable[[], frozenset[str]] | None


# -- hot reload -----------------------------------------------------------------------------------

#: The status file's name inside the data folder (see RulesStatusFile).
RULES_STATUS_FILE = "rules-status.json"


@dataclass(frozen=True)
class RulesStatus:
    """What health shows about the rules: the set in charge and, if any, why a change was refused."""

    version: str
    rules: int
    loaded_at: datetime
    error: str | None = None
    error_since: datetime | None = None
    rules_dir: str = ""
    templates_dir: str = ""  # empty when the templates are not part of the rule set

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "version": self.version,
            "rules": self.rules,
            "loaded_at": self.loaded_at.isoformat(),
            "error": self.error,
            "error_since": self.error_since.isoformat() if self.error_since else None,
            "rules_dir": self.rules_dir,
            "templates_dir": self.templates_dir,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RulesStatus:
        since = data.get("error_since")
        return cls(
            version=str(data["version"]),
            rules=int(data["rules"]),
            loaded_at=datetime.fromisoformat(data["loaded_at"]),
            error=data.get("error"),
            error_since=datetime.fromisoformat(since) if since else None,
            rules_dir=str(data.get("rules_dir") or ""),
            templates_dir=str(data.get("templates_dir") or ""),
        )


class RulesStatusFile:
    """The watcher's status kept in a small JSON file, for `mailbot rules status` in another process.

    A command cannot see the worker's memory. The worker hands `write` to its watcher as `on_change`;
    the file is replaced atomically, so a reader sees the previous status or the next, never half.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> RulesStatusFile:
        return cls(Path(data_dir) / RULES_STATUS_FILE)

    def write(self, status: RulesStatus) -> None:
        data = json.dumps(status.as_json(), ensure_ascii=False, indent=2) + "\n"
        write_atomically(self.path, data.encode("utf-8"))

    def read(self) -> RulesStatus | None:
        """The last status written; None when no worker has written one. ValueError if it is damaged."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return RulesStatus.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{self.path} is not a rules status file ({type(exc).__name__}: {exc})"
            ) from None


class RulesWatcher:
    """The rule set the worker uses, re-read whenever the rule files change (no restart needed).

    The rule files are the routing files and the reading files (orders.toml and the lexicons, which
    decide the intent and the order numbers the rules see); `reading()` gives the latter's config.
    `current()` compares the files' content hash with the set in charge, so saving a file is enough.
    A change that does not pass the checks is refused: the error is logged once and kept for health,
    and the last good set stays in charge until the files are fixed. The first load has no good set
    to fall back on, so an invalid rule set at start-up raises RuleSetErrors.

    With `templates_dir`, the reply templates are part of the rule set: they are validated with it
    (syntax, unknown variables, a trial render within the render limits), their texts are part of its
    version, the rules' template names are checked against them, and `renderer` renders with the
    templates of the set in charge, so a broken template edit is refused like a broken rule and the
    last good templates stay in use. The folder's file metadata is looked at no more often than every
    `templates_every` seconds (reading ~150 file stats at every message would cost more than the
    message), so a template edit is picked up within that time.

    `on_change(status)` is told the status at start-up and whenever it changes (a new set in charge,
    a refused change, the files back to the set in charge). It runs with the watcher's lock held, in
    whichever thread noticed the change, possibly inside an ingest transaction: it must be quick and
    must not write to the database. Its failure is logged and does not stop the rules from working.
    """

    def __init__(
        self,
        rules_dir: Path,
        *,
        known_templates: TemplateNames = None,
        known_mailboxes: frozenset[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[RulesStatus], None] | None = None,
        templates_dir: Path | None = None,
        template_limits: RenderLimits = DEFAULT_LIMITS,
        attachment_limits: AttachmentLimits = DEFAULT_ATTACHMENT_LIMITS,
        templates_every: float = 2.0,
        rules_every: float = 0.0,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None
        self._template_limits = template_limits
        self._attachment_limits = attachment_limits
        self._templates_every = templates_every
        # Reading and hashing the rule files costs ~1 ms: the worker looks at most every `rules_every`
        # seconds (an edit still takes effect within a second), not at every message.
        self._rules_every = rules_every
        self._rules_looked_at = 0.0
        self._on_disk: TemplateFiles | None = None  # the last snapshot read of the templates folder
        self._looked_at = 0.0
        self._version_memo: tuple[tuple[tuple[str, str], ...], TemplateFiles | None, str | None] | None = None
        self._templates = known_templates
        self._mailboxes = known_mailboxes
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._ruleset, self._reading, self._store = self._load()
        self._loaded_at = clock()
        self._error: str | None = None
        self._error_since: datetime | None = None
        self._refused: tuple[str | None, frozenset[str] | None] | None = None
        self.renderer = TemplatesInCharge(self.templates)
        log.info("rules loaded: version %s, %d rules", self._ruleset.short_version, len(self._ruleset.rules))
        with self._lock:
            self._announce()

    def current(self) -> RuleSet:
        """The rule set to decide with now; picks up a valid change to the files first."""
        with self._lock:
            if self._refresh():
                self._announce()
            return self._ruleset

    def reading(self) -> ReadingConfig:
        """How to read mail (lexicons, order format) under the rules in charge; re-read like them."""
        with self._lock:
            if self._refresh():
                self._announce()
            if self._reading is None:
                raise RuleSetErrors(
                    [RuleFileError(str(self.rules_dir / "lexicons"), None, None, "no lexicon files found")]
                )
            return self._reading

    def templates(self) -> TemplateStore:
        """The reply templates of the set in charge (a snapshot: later edits do not touch it)."""
        with self._lock:
            if self._store is None:
                raise RuntimeError("this watcher was made without a templates folder")
            return self._store

    def status(self) -> RulesStatus:
        with self._lock:
            return self._status()

    def _status(self) -> RulesStatus:
        return RulesStatus(
            self._ruleset.version,
            len(self._ruleset.rules),
            self._loaded_at,
            self._error,
            self._error_since,
            str(self.rules_dir),
            str(self.templates_dir or ""),
        )

    def _announce(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(self._status())
        except Exception:  # health reporting must never stop the rules from being used
            log.exception("rules: could not record the rules status")

    def _known_templates(self) -> frozenset[str] | None:
        return self._templates() if callable(self._templates) else self._templates

    def _load(self) -> tuple[RuleSet, ReadingConfig | None, TemplateStore | None]:
        """The rules, their reading config and their templates; RuleSetErrors listing every problem."""
        files = self._templates_on_disk(look=True)
        store = TemplateStore.pinned(files, limits=self._template_limits) if files is not None else None
        problems = template_errors(store) if store is not None else []
        known = store.names() if store is not None else self._known_templates()
        try:
            ruleset = load_rules_and_templates(
                self.rules_dir, files, known_templates=known, known_mailboxes=self._mailboxes
            )
        except RuleSetErrors as invalid:
            raise RuleSetErrors([*invalid.errors, *problems]) from None
        if problems:
            raise RuleSetErrors(problems)
        if not (self.rules_dir / "lexicons").is_dir():
            return ruleset, None, store  # a folder of routing files only (a draft being checked)
        try:
            return ruleset, load_reading_config(self.rules_dir, self._attachment_limits), store
        except RuleFileError as error:
            raise RuleSetErrors([error]) from None

    def _templates_on_disk(self, *, look: bool = False) -> TemplateFiles | None:
        """The templates folder's snapshot, read again when its files changed since the last look."""
        if self.templates_dir is None:
            return None
        now = time.monotonic()
        if look or self._on_disk is None or now - self._looked_at >= self._templates_every:
            self._looked_at = now
            seen = self._on_disk
            exists = self.templates_dir.is_dir()
            if seen is None or seen.missing == exists or fingerprint(self.templates_dir) != seen.fingerprint:
                self._on_disk = read_template_files(self.templates_dir)
        return self._on_disk

    def _files_version(self) -> str | None:
        """`files_version` of the folders, remembered while the rule texts and the snapshot stay the same.

        It is asked at every message; hashing ~150 template texts each time would cost more than
        reading the rule files does, and they change only when a new snapshot is taken.
        """
        try:
            sources = [*read_routing_sources(self.rules_dir), *read_reading_sources(self.rules_dir)]
        except RuleSetErrors:
            return None
        files = self._templates_on_disk()
        key = tuple((source.path, source.text) for source in sources)
        memo = self._version_memo
        if memo is not None and memo[1] is files and memo[0] == key:
            return memo[2]
        version = files_version(self.rules_dir, files)
        self._version_memo = (key, files, version)
        return version

    def _refresh(self) -> bool:
        """Take a valid change, or note a refused one; True when the status changed."""
        if self._rules_every:
            now = time.monotonic()
            if now - self._rules_looked_at < self._rules_every:
                return False
            self._rules_looked_at = now
        version = self._files_version()
        if version == self._ruleset.version:
            if self._error is None:
                return False
            log.info(
                "rules: the files are back to version %s; nothing to change", self._ruleset.short_version
            )
            self._error = self._error_since = None
            self._refused = None
            return True
        # Retry a refused change only when something that could fix it has changed.
        attempt = (version, self._known_templates())
        if attempt == self._refused:
            return False
        try:
            ruleset, reading, store = self._load()
        except RuleSetErrors as problems:
            self._refused = attempt
            if self._error is None:
                self._error_since = self._clock()
            self._error = str(problems)
            log.error(
                "rules in %s%s were changed but are invalid; still using version %s: %s",
                self.rules_dir,
                f" or templates in {self.templates_dir}" if self.templates_dir else "",
                self._ruleset.short_version,
                _one_line(problems.errors),
            )
            return True
        log.info(
            "rules reloaded: version %s -> %s, %d rules",
            self._ruleset.short_version,
            ruleset.short_version,
            len(ruleset.rules),
        )
        self._ruleset, self._reading, self._store = ruleset, reading, store
        self._loaded_at = self._clock()
        self._error = self._error_since = None
        self._refused = None
        return True


#: How many problems a refusal's log line names; `rules check` and `rules status` list them all.
LOGGED_PROBLEMS = 5


def _one_line(errors: tuple[RuleFileError, ...]) -> str:
    """The problems of a refused change as one log line (a log line per problem would flood the log)."""
    shown = "; ".join(str(e).replace("\n", " ") for e in errors[:LOGGED_PROBLEMS])
    more = len(errors) - LOGGED_PROBLEMS
    return shown + (f"; and {more} more (mailbot rules check lists them)" if more > 0 else "")
