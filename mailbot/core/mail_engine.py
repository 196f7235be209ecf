"""mail-parser reads the message; the stdlib compat32 parser takes over whenever it raises.

mail-parser (the design card's parser) builds the message tree and reads what the stdlib leaves
raw: addresses and dates with their defects, the Received chain, and its defect categories, of
which a malformed start boundary is the one that matters most. A part can hide behind such a
boundary in the epilogue, where filters do not look but some clients still show it: a phishing
signal, recorded and kept as an attachment rather than read as the buyer's words.

Its own body decoding is not used: text goes through our charset cascade (core/charsets.py),
which records every fallback, and re-encoding every attachment to base64 is work reading never
needs. `_Reader.parse` therefore runs mail-parser's header and defect steps only; the pinned
mail-parser version (4.8) is the one these steps were written against, and the tests in
tests/core/test_mail_engine.py fail if a new version changes them.
"""

from __future__ import annotations

import email
import email.message
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import mailparser
from mailparser.const import EPILOGUE_DEFECTS
from mailparser.utils import find_between

from mailbot.core.types import ReceivedHop

MAX_HOPS = 50
MAX_DETAILS = 3  # per mail-parser defect category: enough for staff to see what was wrong
# mail-parser's header defect categories, with the attribute holding their details.
_HEADER_DEFECTS = (
    ("AddressHeaderDefect", "address_header_defects"),
    ("DateHeaderDefect", "date_header_defects"),
    ("ReceivedHeaderDefect", "received_header_defects"),
)
HIDDEN_EPILOGUE_PART = "mime: part hidden in the epilogue behind a malformed boundary (phishing signal)"


@dataclass(frozen=True)
class ParsedMessage:
    """The message tree and what mail-parser read around it."""

    message: email.message.Message
    received: tuple[ReceivedHop, ...] = ()
    defects: tuple[str, ...] = ()
    hidden_parts: tuple[email.message.Message, ...] = ()  # recovered from the epilogue


class _Reader(mailparser.MailParser):  # type: ignore[misc]  # mail-parser ships no type hints
    """mail-parser without its body and attachment extraction (see the module docstring)."""

    hidden_parts: tuple[email.message.Message, ...] = ()

    def parse(self) -> _Reader:
        self._reset()  # headers: address, date and Received parsing with their defects
        if self.message is None:
            return self
        for part in self.message.walk():
            self._append_defects(part, part.get_content_type())
        if self.defects_categories & EPILOGUE_DEFECTS:
            # mail-parser's own epilogue lookup; it raises on some DSNs and malformed MIME, and
            # then the stdlib parser reads the mail instead.
            boundary = "--" + self.message.get_boundary()
            epilogue = find_between(self.message.epilogue, boundary, boundary + "--")
            if epilogue is not None:
                self.hidden_parts = (email.message_from_string(epilogue),)
        return self


def parse_message(data: bytes) -> ParsedMessage:
    """Parse with mail-parser; on any exception, with the stdlib parser and a recorded defect."""
    try:
        reader = _Reader.from_bytes(data)
    except Exception as exc:  # mail-parser's failure is not the message's: read it another way
        reason = f"mail-parser raised {type(exc).__name__}: {exc}"[:160]
        return ParsedMessage(
            message=email.message_from_bytes(data),
            defects=(f"{reason}; read with the stdlib parser",),
        )
    defects: list[str] = []
    categories = set(reader.defects_categories)
    for category, attribute in _HEADER_DEFECTS:
        if category in categories:
            details = [
                f"{d.get('header', 'received')}: {d.get('reason', '')}"
                for d in getattr(reader, attribute)[:MAX_DETAILS]
            ]
            defects.append(f"mail-parser: {category}: " + "; ".join(d for d in details if d)[:200])
    if reader.hidden_parts:
        defects.append(HIDDEN_EPILOGUE_PART)
    return ParsedMessage(
        message=reader.message,
        received=_hops(reader.received),
        defects=tuple(defects),
        hidden_parts=reader.hidden_parts,
    )


def _hops(received: list[dict[str, Any]]) -> tuple[ReceivedHop, ...]:
    hops = []
    for index, hop in enumerate(received[:MAX_HOPS], start=1):
        hops.append(
            ReceivedHop(
                hop=int(hop.get("hop") or index),
                from_host=_clause(hop.get("from")),
                by_host=_clause(hop.get("by")),
                protocol=_clause(hop.get("with")),
                id=_clause(hop.get("id")),
                for_addr=_clause(hop.get("for")).strip("<>"),
                date=_utc(hop.get("date_utc")),
            )
        )
    return tuple(hops)


def _clause(value: object) -> str:
    return " ".join(str(value).split())[:300] if value else ""


def _utc(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


__all__ = ["HIDDEN_EPILOGUE_PART", "ParsedMessage", "parse_message"]
