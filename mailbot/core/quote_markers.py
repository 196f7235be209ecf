"""Where quoted history and forwarded content start in plain text, in the languages of our buyers.

Mail clients mark a reply or a forward with conventions that differ by client and language:
"On ... wrote:" attributions, Outlook "From:/Sent:" blocks, "-----Original Message-----",
"---------- Forwarded message ---------", `>` lines. mail-parser-reply is asked for a second
opinion when none of those is found.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

from mailbot.core.html_text import SENTINELS

_WROTE = re.compile(
    r"(?:\bwrote|\bwrites|\bschrieb|hat geschrieben|a écrit|a ecrit|escribió|escribio|escreveu|ha scritto|"
    r"\bschreef|heeft geschreven|\bskrev|napisał\(a\)|napisała|napisał|nadesłał|napsal\(a\)|написал\(а\)|"
    r"написала|написал|пишет|yazdı|đã viết|\bmenulis|كتب|写道|寫道|작성하였습니다|작성|書きました|"
    r"kirjoitti|írta|έγραψε)\s*[:：]?\s*$",
    re.IGNORECASE,
)


def _wrote_last_letters() -> frozenset[str]:
    """The letters an attribution ending ("wrote", "schrieb", "写道"...) can end with, in any case."""
    body = _WROTE.pattern[len("(?:") : _WROTE.pattern.index(")\\s*")]
    words = [w.replace("\\b", "").replace("\\(", "(").replace("\\)", ")") for w in body.split("|")]
    last = {w[-1] for w in words if w}
    variants = {v for c in last for v in (c, c.upper(), c.lower(), c.upper().lower(), c.lower().upper())}
    return frozenset(v for v in variants | {"İ", "I", "i", "ı"} if len(v) == 1)


_WROTE_LAST = _wrote_last_letters()


def _wrote(text: str) -> bool:
    """Does the text end like "…wrote:"? Most lines end with a letter no attribution ends with,
    which one look at the last letter settles before the 40-way search of the last 80 characters."""
    tail = text[-80:]
    end = tail.rstrip().rstrip(":：").rstrip()
    return bool(end) and end[-1] in _WROTE_LAST and _WROTE.search(tail) is not None


_ATTRIBUTION_OPENER = re.compile(
    r"^(?:on|am|le|el|em|il|op|den|dne|dnia|w dniu|в|vào|pada|tanggal|في|在|\d{1,4}[./年-])",
    re.IGNORECASE,
)
# "2026年4月24日(金) 18:35 Name <a@b>:" and other date + address lines that end in a colon.
_ADDRESS_COLON = re.compile(r"^.*\d.*<[^<>@\s]+@[^<>\s]+>\s*[:：]\s*$")

_HEADER_FROM = (
    r"from|von|de|da|van|od|från|fra|fram|от|від|kimden|gönderen|từ|dari|pengirim|من|发件人|寄件者|"
    r"差出人|보낸 사람|보낸사람|feladó|lähettäjä|mittente|remetente|expéditeur|afzender|nadawca"
)
_HEADER_OTHER = (
    r"sent|date|to|subject|cc|bcc|gesendet|datum|an|betreff|envoyé|envoye|à|objet|enviado|enviada|"
    r"enviado el|fecha|para|asunto|assunto|data|oggetto|inviato|a|verzonden|aan|onderwerp|skickat|till|ämne|"
    r"sendt|til|emne|отправлено|дата|кому|тема|копия|надіслано|发送时间|发送日期|日期|收件人|抄送|主题|主旨|"
    r"傳送時間|寄件日期|收件者|副本|送信日時|日付|宛先|件名|tarih|gönderildi|gönderilme|kime|alıcı|konu|bilgi|"
    r"đã gửi|ngày|đến|tới|chủ đề|tiêu đề|dikirim|tanggal|kepada|perihal|subjek|التاريخ|أرسلت|تاريخ|إلى|"
    r"الموضوع|wysłano|do|temat|odesláno|komu|předmět|받는 사람|날짜|제목|참조"
)
_HEADER_DATE = (
    r"sent|date|gesendet|datum|envoyé|envoye|enviado|enviada|enviado el|fecha|data|inviato|verzonden|skickat|"
    r"sendt|отправлено|дата|надіслано|发送时间|发送日期|日期|傳送時間|寄件日期|送信日時|日付|tarih|gönderildi|"
    r"gönderilme|đã gửi|ngày|dikirim|tanggal|التاريخ|أرسلت|تاريخ|wysłano|odesláno|날짜"
)
_HEADER_SUBJECT = (
    r"subject|betreff|objet|asunto|assunto|oggetto|onderwerp|ämne|emne|тема|主题|主旨|件名|konu|chủ đề|"
    r"tiêu đề|perihal|subjek|الموضوع|temat|předmět|제목"
)
# Possessive quantifiers (*+): no label starts with a blank, "*" or ">", and "\s*\*?\s*" could
# split one long run of blanks in quadratically many ways before giving up.
_FROM_LINE = re.compile(rf"^[*>\s]*+(?:{_HEADER_FROM})\s*+(?:\*\s*+)?[:：]", re.IGNORECASE)
_DATE_LINE = re.compile(rf"^[*>\s]*+(?:{_HEADER_DATE})\s*+(?:\*\s*+)?[:：]", re.IGNORECASE)
_SUBJECT_LINE = re.compile(rf"^[*>\s]*+(?:{_HEADER_SUBJECT})\s*+(?:\*\s*+)?[:：]", re.IGNORECASE)
_OTHER_LINE = re.compile(rf"^[*>\s]*+(?:{_HEADER_OTHER})\s*+(?:\*\s*+)?[:：]", re.IGNORECASE)

FORWARD_MARKER = re.compile(
    r"^[\s>*_=-]*+(?:forwarded message|begin forwarded message|forwarded by\b.*|weitergeleitete nachricht|"
    r"anfang der weitergeleiteten nachricht|message transféré|message transfere|début du message réexpédié|"
    r"message transmis|mensaje reenviado|inicio del mensaje reenviado|mensaje original reenviado|"
    r"mensagem encaminhada|início da mensagem encaminhada|início da mensagem reencaminhada|"
    r"mensagem reencaminhada|messaggio inoltrato|inizio messaggio inoltrato|doorgestuurd bericht|"
    r"пересылаемое сообщение|пересланное сообщение|转发邮件|转发的邮件|轉寄郵件|転送メッセージ|"
    r"転送されたメッセージ|iletilen mesaj|iletilmiş mesaj|tin nhắn đã chuyển tiếp|thư đã chuyển tiếp|"
    r"thư chuyển tiếp|pesan terusan|pesan yang diteruskan|الرسالة المعاد توجيهها|رسالة معاد توجيهها|"
    r"rozesłana wiadomość|přeposlaná zpráva|videresendt meddelelse|vidarebefordrat meddelande)"
    r"[\s*_=:-]*+$",
    re.IGNORECASE,
)
ORIGINAL_MARKER = re.compile(
    r"^[\s>*_=-]*+(?:original message|original-nachricht|ursprüngliche nachricht|message d'origine|"
    r"message d’origine|mensaje original|mensagem original|messaggio originale|oorspronkelijk bericht|"
    r"исходное сообщение|原始邮件|原始郵件|元のメッセージ|orijinal mesaj|özgün ileti|thư gốc|pesan asli|"
    r"الرسالة الأصلية|původní zpráva|oryginalna wiadomość|alkuperäinen viesti|opprinnelig melding|"
    r"ursprungligt meddelande|oprindelig meddelelse|reply message|回复的原邮件)[\s*_=:-]*+$",
    re.IGNORECASE,
)
RULE_LINE = re.compile(r"^\s*+[_\-=—–]{8,}+\s*+$")

#: Only this many lines of a body are looked at for where the quoted history, forward or signature
#: starts; below them only ">" lines are told apart (as quoted), the rest is new text. A person's
#: new text is never that long, and the checks cost microseconds per line (seconds for a megabyte
#: of short lines).
MAX_LINES_SPLIT = 10_000

_REPLY_PARSER_HINT = re.compile(
    r"napsal|skrev|작성|schrieb|wrote|écrit|escribió|scritto|schreef|写道|[:：]\s*$"
)
# Its header regexes backtrack on long bodies (0.1 s on 140 KB); a reply worth splitting is short.
_REPLY_PARSER_MAX_CHARS = 20_000
_REPLY_PARSER_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "cs", "da", "sv", "ja", "zh", "ko")


def is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def attribution_length(lines: list[str], i: int) -> int:
    """How many lines (1-3) starting at i form an "On <date>, <name> wrote:" line; 0 if none."""
    first = lines[i].strip()
    if not first or len(first) > 300:
        return 0
    if _wrote(first) or (first[-1] in ":：" and _ADDRESS_COLON.match(first)):
        return 1
    if not _ATTRIBUTION_OPENER.match(first):
        return 0
    joined = first
    for extra in (1, 2):
        if i + extra >= len(lines) or not lines[i + extra].strip():
            return 0
        joined += " " + lines[i + extra].strip()
        if len(joined) > 400:
            return 0
        if _wrote(joined) or (joined[-1] in ":：" and _ADDRESS_COLON.match(joined)):
            return extra + 1
    return 0


def is_header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style "From: / Sent: / To: / Subject:" block starts at line i.

    "From: Ningbo / To: Los Angeles" in a shipping note is not one: the block needs an address in
    the From line, or both a date and a subject line below it.
    """
    if not _FROM_LINE.match(lines[i]):
        return False
    has_address = "@" in lines[i] or "<" in lines[i]
    labels: set[str] = set()
    for line in lines[i + 1 : i + 9]:
        if not line.strip():
            if labels:
                break
            continue
        if _OTHER_LINE.match(line):
            labels.add(
                "date" if _DATE_LINE.match(line) else "subject" if _SUBJECT_LINE.match(line) else "other"
            )
        elif not labels and "@" in line and len(line) < 120:
            has_address = True  # a wrapped From value ("From: Name\n<addr>")
        else:
            break
    if not labels:
        return False
    return has_address or {"date", "subject"} <= labels


def next_content(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def region_is_forward(lines: list[str], forward_subject: bool) -> bool:
    """Is the quoted region (a DOM quote container) forwarded content rather than reply history?"""
    seen = 0
    for idx, line in enumerate(lines):
        if not line.strip() or line.strip() in SENTINELS:
            continue
        if FORWARD_MARKER.match(line):
            return True
        if forward_subject and (ORIGINAL_MARKER.match(line) or is_header_block(lines, idx)):
            return True
        seen += 1
        if seen >= 3:
            return False
    return False


def reply_parser_cut(text: str, lines: list[str]) -> int | None:
    """Index of the first line of quoted history according to mail-parser-reply, if it finds one.

    It costs about a millisecond, so it is asked only when some line looks like a header label or an
    attribution it might know better than we do.
    """
    if len(text) > _REPLY_PARSER_MAX_CHARS:
        return None
    if not any(
        _OTHER_LINE.match(line) or _FROM_LINE.match(line) or _REPLY_PARSER_HINT.search(line) for line in lines
    ):
        return None
    try:
        message = EmailReplyParser(languages=list(_REPLY_PARSER_LANGUAGES)).read(text)
    except Exception:  # a second opinion must never break the first
        return None
    if len(message.replies) < 2:
        return None
    header = message.replies[1].headers
    if not header or not _credible_header(header):
        return None
    first_line = header.strip().split("\n")[0].strip()
    if not first_line:
        return None
    for idx, line in enumerate(text.split("\n")):
        if line.strip() == first_line:
            return idx
    return None


def _credible_header(header: str) -> bool:
    """Its "two label lines" rule also fires on "From: Ningbo / To: Los Angeles"; ask for more."""
    header_lines = [line for line in header.split("\n") if line.strip()]
    if "@" in header or any(_wrote(line) for line in header_lines):
        return True
    return any(_DATE_LINE.match(line) for line in header_lines) and any(
        _SUBJECT_LINE.match(line) for line in header_lines
    )
