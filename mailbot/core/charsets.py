"""Bytes → text for a declared charset, through a cascade that records every fallback as a defect.

Declared → UTF-8 when the declaration is wrong → detected (cchardet) → replacement characters. A
declared name means what senders mean by it (WHATWG practice: "iso-8859-1" is cp1252); labels that
are codec names but no charsets (idna, punycode, undefined) count as no label; Western text that
decodes but cannot be what was declared (double-byte runs) is re-decoded with the detected charset.
Nothing is decoded to mojibake silently.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import cchardet

# Declared names → the codec that reads what senders actually mean by them (WHATWG practice:
# "iso-8859-1" is cp1252, "gb2312" is GB18030, "shift_jis" is cp932...).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "us": "ascii",
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "cp936": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ms_kanji": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "x-windows-949": "cp949",
    "x-mac-cyrillic": "mac_cyrillic",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859_8",
}
# Stateful 7-bit encodings: ASCII-looking bytes that still need their codec.
_SEVEN_BIT = {"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_kr", "utf_7", "hz"}
_FALLBACKS = {"iso2022_jp": ("iso2022_jp_2", "iso2022_jp_ext"), "cp1252": ("latin_1",), "ascii": ("cp1252",)}
_NO_UTF8_OVERRIDE = {"utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_8"}


# Names Python's codec registry knows that are not charsets a mail is written in: they raise on
# 8-bit bytes (idna, undefined), turn any text into garbage (punycode, the escape codecs) or are
# bytes-to-bytes transforms. Such a label is read as no label, so the cascade still finds the text.
_NOT_CHARSETS = {"idna", "punycode", "undefined", "raw_unicode_escape", "unicode_escape", "mbcs", "oem"}


def _codec(declared: str | None) -> tuple[str | None, str | None]:
    """(python codec name or None, defect) for a declared charset."""
    if declared is None:
        return None, None
    name = declared.strip().strip("\"'").strip().lower()
    if "charset=" in name:
        name = name.split("charset=", 1)[1].strip("\"' ;")
    if not name or name in {"unknown-8bit", "x-unknown", "unknown", "default", "none"}:
        return None, None
    if not name.isprintable():  # a NUL or other control character: no codec lookup can use it
        return None, f"charset: unusable charset label {declared!r}"
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None, f"charset: unknown charset {declared!r}"
    codec = info.name.replace("-", "_")
    if codec in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None, f"charset: unusable charset label {declared!r}"
    return codec, None


# Single-byte Western codecs decode any byte sequence, so a wrong declaration never fails: GBK,
# Big5, Shift_JIS or windows-1251 bytes declared iso-8859-1 come out as Latin-1 garbage. Western
# text has its 8-bit letters alone or in pairs ("ção"); CJK double bytes and Cyrillic words give
# long runs of them. Such text gets a second opinion from the detector.
_WESTERN = {"cp1252", "latin_1", "iso8859_15"}
_HIGH_RUN = re.compile(rb"[\x80-\xff]{3,}")
_MIN_HIGH_BYTES = 6
_MIN_RUN_SHARE = 0.5
_MIN_RUNS = 2
_MIN_REDETECT_CONFIDENCE = 0.5


def _implausible_western(data: bytes) -> bool:
    """True when 8-bit bytes mostly come in several runs of three or more, as double-byte text does."""
    high = sum(1 for byte in data if byte >= 0x80)
    if high < _MIN_HIGH_BYTES:
        return False
    runs = _HIGH_RUN.findall(data)
    # One run is a word such as a test string of umlauts ("äöüßÄÖÜß"); text has several.
    return len(runs) >= _MIN_RUNS and sum(len(run) for run in runs) >= high * _MIN_RUN_SHARE


def _redecode_mojibake(data: bytes, label: str | None, where: str) -> Decoded | None:
    """The detector's reading of implausible Western text, or None when it has no better one."""
    if not _implausible_western(data):
        return None
    guess = cchardet.detect(data)
    detected = guess.get("encoding")
    confidence = float(guess.get("confidence") or 0.0)
    if not detected or confidence < _MIN_REDETECT_CONFIDENCE:
        return None
    codec, _ = _codec(str(detected))
    if codec is None or codec in _WESTERN:
        return None
    try:
        text = data.decode(codec)
    except (UnicodeError, LookupError):
        return None
    return Decoded(
        text,
        f"charset: {where} declared {label} reads as mojibake; "
        f"re-decoded as {str(detected).lower()} ({confidence:.2f})",
    )


@dataclass(frozen=True)
class Decoded:
    text: str
    defect: str | None = None


def decode_bytes(data: bytes, declared: str | None, *, where: str = "body") -> Decoded:
    """Bytes → text through the cascade declared → UTF-8 → detected → replacement characters."""
    codec, defect = _codec(declared)
    label = declared.strip().lower() if declared else None
    if not data:
        return Decoded("", defect)
    if codec in _SEVEN_BIT or (codec is None and b"\x1b$" in data):
        for name in (codec or "iso2022_jp", *_FALLBACKS.get(codec or "iso2022_jp", ())):
            try:
                return Decoded(data.decode(name), defect)
            except (UnicodeError, LookupError):
                continue
    if data.isascii() and codec not in {"utf_16", "utf_16_le", "utf_16_be", "utf_32"}:
        return Decoded(data.decode("ascii"), defect)
    utf8: str | None
    try:
        utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    if codec is not None:
        if utf8 is not None and codec not in _NO_UTF8_OVERRIDE and codec != "ascii":
            return Decoded(utf8, f"charset: {where} declared {label} but bytes are utf-8; decoded as utf-8")
        for name in (codec, *_FALLBACKS.get(codec, ())):
            try:
                text = data.decode(name)
            except (UnicodeError, LookupError):
                continue
            if name in _WESTERN and (redecoded := _redecode_mojibake(data, label, where)) is not None:
                return redecoded
            if name == codec:
                return Decoded(text, defect)
            if codec == "ascii" and utf8 is not None:
                break
            return Decoded(text, f"charset: {where} declared {label} has 8-bit bytes; decoded as {name}")
    if utf8 is not None:
        if codec is None:
            return Decoded(utf8, defect or f"charset: {where} has no declared charset; bytes are utf-8")
        return Decoded(utf8, f"charset: {where} declared {label} but bytes are utf-8; decoded as utf-8")
    guess = cchardet.detect(data)
    detected = guess.get("encoding")
    confidence = float(guess.get("confidence") or 0.0)
    if detected and confidence >= 0.3:
        dcodec, _ = _codec(str(detected))
        if dcodec is not None:
            try:
                text = data.decode(dcodec)
            except (UnicodeError, LookupError):
                pass
            else:
                return Decoded(
                    text,
                    f"charset: {where} declared {label or 'nothing'} but bytes are not that; "
                    f"detected {str(detected).lower()} ({confidence:.2f})",
                )
    fallback = codec or "cp1252"
    text = data.decode(fallback, errors="replace")
    return Decoded(
        text,
        f"charset: {where} declared {label or 'nothing'}; undecodable bytes replaced (read as {fallback})",
    )


__all__ = ["Decoded", "decode_bytes"]
