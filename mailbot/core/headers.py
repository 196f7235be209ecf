"""Header values → text: RFC 2047 encoded words, raw 8-bit bytes, addresses, Message-IDs and dates.

Tolerant by design: clients split multi-byte characters across encoded words, drop base64 padding,
put raw 8-bit bytes or control characters in headers and break address quoting. Each repair is
written into the caller's defect list.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import quopri
import re
from datetime import UTC, datetime

from mailbot.core.charsets import decode_bytes

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=", re.DOTALL)
FOLD = re.compile(r"\r?\n[ \t]*")


def _b_decode(payload: str) -> bytes:
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return payload.encode("ascii", "replace")


def _q_decode(payload: str) -> bytes:
    return quopri.decodestring(payload.replace("_", " ").encode("utf-8", "surrogateescape"), header=True)


def decode_words(value: str, defects: list[str] | None = None, where: str = "header") -> str:
    """RFC 2047 encoded words → text; tolerant of split multi-byte characters and bad padding."""
    if "=?" not in value:
        return value
    pieces: list[tuple[str | None, bytes | str]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        literal = value[pos : match.start()]
        if literal:
            pieces.append((None, literal))
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        raw = _b_decode(match.group(3)) if match.group(2) in "bB" else _q_decode(match.group(3))
        pieces.append((charset.lower(), raw))
        pos = match.end()
    if pos < len(value):
        pieces.append((None, value[pos:]))
    # Whitespace between two encoded words is not text; adjacent words of one charset are joined
    # before decoding because clients split multi-byte characters across words.
    merged: list[tuple[str | None, bytes | str]] = []
    for idx, (charset, chunk) in enumerate(pieces):
        if (
            charset is None
            and isinstance(chunk, str)
            and not chunk.strip()
            and 0 < idx < len(pieces) - 1
            and pieces[idx - 1][0] is not None
            and pieces[idx + 1][0] is not None
        ):
            continue
        if charset is not None and merged and merged[-1][0] == charset:
            previous = merged[-1][1]
            assert isinstance(previous, bytes) and isinstance(chunk, bytes)
            merged[-1] = (charset, previous + chunk)
        else:
            merged.append((charset, chunk))
    out: list[str] = []
    for charset, chunk in merged:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        decoded = decode_bytes(chunk, charset, where=where)
        if decoded.defect and defects is not None:
            defects.append(decoded.defect)
        out.append(decoded.text)
    return "".join(out)


_SURROGATE = re.compile("[\udc80-\udcff]")


# Control characters have no place in a header value (tab and the folding line breaks aside);
# a NUL would even make PostgreSQL refuse the row that stores the subject.
_HEADER_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")


def no_controls(value: str, defects: list[str], where: str) -> str:
    if _HEADER_CONTROLS.search(value) is None:
        return value
    defects.append(f"control characters removed from header {where}")
    return _HEADER_CONTROLS.sub("", value)


def unescape_8bit(value: str, defects: list[str], where: str) -> str:
    """Header bytes the parser kept as surrogates (raw 8-bit headers) → text, without control characters."""
    value = no_controls(value, defects, where)
    if value.isascii() or not _SURROGATE.search(value):
        return value
    decoded = decode_bytes(value.encode("ascii", "surrogateescape"), None, where=where)
    defects.append(f"8-bit bytes in header {where}" + (f" ({decoded.defect})" if decoded.defect else ""))
    return decoded.text


def header_text(name: str, raw: str, defects: list[str]) -> str:
    value = FOLD.sub(" ", unescape_8bit(raw, defects, name)).strip()
    return no_controls(decode_words(value, defects, where=name), defects, name)


# --------------------------------------------------------------------------------------------
# Addresses, Message-IDs, dates
# --------------------------------------------------------------------------------------------

_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*", re.UNICODE)


def addresses(raw_values: list[str], defects: list[str], where: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; tolerant of groups and broken quoting."""
    result: list[tuple[str, str]] = []
    for raw in raw_values:
        value = FOLD.sub(" ", unescape_8bit(raw, defects, where))
        try:
            pairs = email.utils.getaddresses([value])
        except Exception:  # a malformed header must not stop the parse
            pairs = []
        found = False
        for name, addr in pairs:
            addr = addr.strip().strip("<>").lower()
            if not addr or addr.endswith(":") or " " in addr:
                continue
            result.append((no_controls(decode_words(name, defects, where), defects, where).strip(), addr))
            found = True
        if not found:
            result.extend(("", m.group(0).lower()) for m in _ADDR.finditer(value))
    return result


_MSGID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    ids = _MSGID.findall(value)
    if not ids:
        ids = [tok.strip("<>,;") for tok in value.split() if "@" in tok]
    return tuple(dict.fromkeys(i for i in ids if i))


def parse_date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"unparseable Date {value[:60]!r}")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


__all__ = [
    "FOLD",
    "addresses",
    "decode_words",
    "header_text",
    "message_ids",
    "no_controls",
    "parse_date",
    "unescape_8bit",
]
