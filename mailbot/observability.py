"""Logging set-up: one stream for mailbot and the libraries, with secrets kept out of it.

imapclient logs protocol lines at DEBUG; a LOGIN or AUTHENTICATE line would carry a password, so a
filter masks them whatever the level, and no mailbot code ever formats a secret into a message.

Lines about a message carry the mailbox, the ledger id and the case reference where known: from
`extra={"mailbox": …, "ledger_id": …, "case_ref": …}` on the call, or from `log_context(...)`
around the work (a poll sets the mailbox; intake adds the ledger id and case to the block's handle
as soon as the ledger row is written; the outbox names all three while it sends a reply). In JSON
they are fields of their own, so a log search for one case finds every line about it.

Buyer addresses are personal data: at INFO and above they are masked (`b***@shop.example`) unless
they are one of our own mailbox addresses, in the message and in a traceback alike; DEBUG keeps
them for a developer on a test system.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# Protocol verbs are upper case on the wire; "login failed for …" in prose must stay readable.
_SECRET_LINE = re.compile(r"(\bLOGIN\s+\S+\s+|\bAUTHENTICATE\s+\S+\s+|\bAUTH\s+\S+\s+|(?i:password)=)\S+")
_ADDRESS = re.compile(r"([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
CONTEXT_FIELDS = ("mailbox", "ledger_id", "case_ref")

_context: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "mailbot_log_context", default=()
)


def _merge(fields: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple({**dict(_context.get()), **{k: v for k, v in fields.items() if v is not None}}.items())


class LogFields:
    """The handle of a `log_context` block, for fields learnt inside it (the ledger id once written).

    A handle made outside `log_context` (a default) is closed: adding to it does nothing, so code
    that may run outside any block cannot leave fields behind on the thread.
    """

    def __init__(self) -> None:
        self.open = False

    def add(self, **fields: Any) -> None:
        """From here to the end of the block, lines carry these fields too (None values are left out).

        Call it in the block itself, not in a nested `log_context`: leaving the nested block would
        drop what was added.
        """
        if self.open:
            _context.set(_merge(fields))


@contextmanager
def log_context(**fields: Any) -> Iterator[LogFields]:
    """Every log line inside the block (in this thread) carries these fields; None values are left out."""
    token = _context.set(_merge(fields))
    handle = LogFields()
    handle.open = True
    try:
        yield handle
    finally:
        handle.open = False
        _context.reset(token)  # also undoes what `LogFields.add` set inside the block


def _exception_text(record: logging.LogRecord) -> None:
    """Format the traceback now (formatters reuse `exc_text`), so the filters can mask it too:
    an exception's message may quote an address or a protocol line."""
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_LINE.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        _exception_text(record)
        if record.exc_text:
            record.exc_text = _SECRET_LINE.sub(r"\1***", record.exc_text)
        return True


def redact_address(match: re.Match[str]) -> str:
    local = match.group(1)
    return f"{local[:1]}***@{match.group(2)}"


class RedactAddresses(logging.Filter):
    """Masks every address but our own mailboxes' in records at INFO and above.

    Our own Message-IDs (`<…@message_id_domain>`) look like addresses but name no person; masked,
    a log line about a reply could no longer be matched to the reply, so that domain is kept.
    """

    def __init__(self, own: Iterable[str] = (), own_domains: Iterable[str] = ()) -> None:
        super().__init__()
        self.own = frozenset(address.lower() for address in own)
        self.own_domains = frozenset(domain.lower() for domain in own_domains)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        message = record.getMessage()
        redacted = _ADDRESS.sub(self._mask, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        _exception_text(record)
        if record.exc_text:
            record.exc_text = _ADDRESS.sub(self._mask, record.exc_text)
        return True

    def _mask(self, match: re.Match[str]) -> str:
        ours = match.group(0).lower() in self.own or match.group(2).lower() in self.own_domains
        return match.group(0) if ours else redact_address(match)


class AddContext(logging.Filter):
    """Copies the `log_context` fields onto the record, unless the call passed them in `extra`."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with `[mailbox=pm ledger_id=12 case_ref=K7Q2XZ]` when a line is about a message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if getattr(record, key, None)]
        return f"{line} [{' '.join(fields)}]" if fields else line


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    own_addresses: Iterable[str] = (),
    own_domains: Iterable[str] = (),
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.addFilter(RedactAddresses(own_addresses, own_domains))
    handler.addFilter(AddContext())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "imapclient", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
