"""What a person wrote now, apart from what they quoted, forwarded or signed.

A buyer's order number, language and request live in the new text; the same digits in an old
quoted reply or in a signature mean something else. This module turns a body (plain text, or HTML
through inscriptis) into four parts: new text, quoted history, signature and forwarded content.

HTML quote containers (Gmail's `.gmail_quote`, `blockquote[type=cite]`, Outlook's `#divRplyFwdMsg`
...) are marked at DOM level before conversion, so the text splitter sees exact boundaries instead
of guessing. Plain text is split line by line on the conventions mail clients use in many languages
("On ... wrote:", Outlook "From:/Sent:" blocks, "-----Original Message-----", `>` lines, "-- ",
"Sent from my iPhone"); mail-parser-reply is asked for a second opinion when none of those is found.
"""

from __future__ import annotations

import bisect
import contextlib
import html as html_lib
import re
import unicodedata
from dataclasses import dataclass

import lxml.html
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from mailparser_reply import EmailReplyParser

# Sentinels put into the DOM in front of (and behind) quote and signature containers. Private-use
# characters survive inscriptis and NFKC and never occur in real mail text.
QUOTE_START = "\ue000quote\ue000"
QUOTE_END = "\ue000/quote\ue000"
SIGNATURE_START = "\ue000signature\ue000"
_SENTINELS = (QUOTE_START, QUOTE_END, SIGNATURE_START)

# The "strict" CSS profile keeps inline elements glued together: "<span>3855 7935</span><span>4333"
# must stay "3855 79354333", as the buyer's client showed it, not gain a space.
# Table cells are separated by " | " so the digits of neighbouring cells never read as one number.
_INSCRIPTIS_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], table_cell_separator=" | ")

# Invisible characters, and NUL, which no text means and PostgreSQL refuses to store.
# (A regex, not str.translate, which looks up a table for every character of a non-ASCII text.)
_ZERO_WIDTH = re.compile("[\x00\u200b\u200c\u200d\u2060\ufeff\u00ad]")


@dataclass(frozen=True)
class TextSplit:
    """One body cut into what was written now and what was carried along."""

    new: str
    quoted: str
    signature: str
    forwarded: str


def normalise(text: str) -> str:
    """NFKC (full-width digits and colons, NBSP) and `\\n` line ends, so later regexes see one form."""
    text = _ZERO_WIDTH.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = unicodedata.normalize("NFKC", text)
    return "\n".join(line.rstrip() for line in text.split("\n"))


def strip_sentinels(text: str) -> str:
    for mark in _SENTINELS:
        text = text.replace(mark, "")
    return text


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_QUOTE_CONTAINERS = (
    # (xpath, quoted until the end of the message?)
    ("//div[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]", False),
    ("//blockquote[@type='cite']", False),
    ("//div[contains(@class, 'yahoo_quoted')]", False),
    ("//div[@id='divRplyFwdMsg']", True),
    ("//div[@id='appendonsend']", True),
    ("//hr[@id='stopSpelling']", True),
    ("//div[@id='OLK_SRC_BODY_SECTION']", True),
    ("//div[contains(@class, 'OutlookMessageHeader')]", True),
    ("//div[@class='moz-forward-container']", False),
)
_SIGNATURE_CONTAINERS = (
    "//div[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')]",
    "//div[@class='moz-signature']",
    "//div[@id='Signature']",
    "//div[@id='signature']",
)
# A tag holds no "<": a "<" left open ends the attempt at the next "<" instead of the end of the text.
_TAG = re.compile(r"<[^<>]*>")
_HIDDEN_OPEN = re.compile(r"(?i)<(script|style|head)\b")
_LINE_TAG = re.compile(r"(?i)<\s*(br|/p|/div|/tr|/li|/h\d)\b[^<>]*>")


#: HTML larger than this is converted without layout (no table columns, no quote containers):
#: inscriptis lays out a 1 MB table in seconds, and no buyer writes half a megabyte of markup.
MAX_LAYOUT_HTML = 500_000
_DATA_URI = re.compile(r"""data:[^"'\s)>]{256,}""")


def _crude_html_text(html: str) -> str:
    """Last resort when lxml cannot build a tree (empty or binary 'HTML')."""
    text = _LINE_TAG.sub("\n", _without_hidden(html))
    return html_lib.unescape(_TAG.sub("", text))


def _without_hidden(html: str) -> str:
    """The HTML without <script>, <style> and <head> elements. Each closing tag is looked up once
    (a regex with a lazy ".*?" read to the end of the text for every unclosed opening)."""
    closings: dict[str, list[int]] = {}
    out: list[str] = []
    done = 0
    for opening in _HIDDEN_OPEN.finditer(html):
        if opening.start() < done:
            continue
        name = opening.group(1).lower()
        if name not in closings:
            closings[name] = [m.end() for m in re.finditer(rf"(?i)</{name}\s*>", html)]
        ends = closings[name]
        i = bisect.bisect_right(ends, opening.end() - 1)
        if i == len(ends):
            continue  # never closed: left as it is, like the regex did
        out.append(html[done : opening.start()])
        out.append(" ")
        done = ends[i]
    out.append(html[done:])
    return "".join(out)


def _mark(element: lxml.html.HtmlElement, text: str, *, after: bool) -> None:
    marker = lxml.html.Element("div")
    marker.text = text
    if after:
        # Text right after the container (its tail) was written after the quote: keep it behind
        # the end marker, not inside the quoted region.
        marker.tail, element.tail = element.tail, None
        element.addnext(marker)
    else:
        parent = element.getparent()
        if parent is None:
            return
        parent.insert(parent.index(element), marker)


def html_to_text(html: str, *, mark_quotes: bool = False) -> str:
    """Readable text of an HTML body; with `mark_quotes`, quote and signature containers are fenced
    with the sentinels that `split_message` understands. Never raises."""
    if not html.strip():
        return ""
    if len(html) > MAX_LAYOUT_HTML:
        html = _DATA_URI.sub("data:", html)  # pictures written into the HTML are not text
        if len(html) > MAX_LAYOUT_HTML:
            return _crude_html_text(html)
    try:
        tree = lxml.html.document_fromstring(html)
    except Exception:  # lxml raises several types on junk; any of them means "no tree"
        return _crude_html_text(html)
    if mark_quotes:
        with contextlib.suppress(Exception):  # marking helps the split; plain conversion still works
            _mark_containers(tree)
    try:
        text = Inscriptis(tree, _INSCRIPTIS_CONFIG).get_text()
    except Exception:  # inscriptis on pathological trees (deep nesting)
        return _crude_html_text(html)
    return str(text)


def _mark_containers(tree: lxml.html.HtmlElement) -> None:
    marked: set[lxml.html.HtmlElement] = set()

    def inside_marked(element: lxml.html.HtmlElement) -> bool:
        return element in marked or any(ancestor in marked for ancestor in element.iterancestors())

    for xpath, to_end in _QUOTE_CONTAINERS:
        for element in tree.xpath(xpath):
            if inside_marked(element):
                continue
            marked.add(element)
            _mark(element, QUOTE_START, after=False)
            if not to_end:
                _mark(element, QUOTE_END, after=True)
    for xpath in _SIGNATURE_CONTAINERS:
        for element in tree.xpath(xpath):
            if not inside_marked(element):
                _mark(element, SIGNATURE_START, after=False)


# --------------------------------------------------------------------------------------------
# format=flowed (RFC 3676)
# --------------------------------------------------------------------------------------------


def unflow(text: str, *, delsp: bool) -> str:
    """Join soft line breaks of a format=flowed body; a hard-wrapped order number becomes one line."""
    out: list[str] = []
    pending = ""
    pending_depth = 0
    open_paragraph = False
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw_line) - len(raw_line.lstrip(">"))
        line = raw_line[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if open_paragraph and depth != pending_depth:
            out.append(_quote_prefix(pending_depth) + pending)
            pending, open_paragraph = "", False
        pending_depth = depth
        if delsp and pending and _keeps_space(pending[-1:], line[:1]):
            # Many clients label delsp=yes yet break at a real space; between two words of a
            # spaced script that space was meant. Digits and CJK join without one.
            pending += " "
        if line.endswith(" ") and line.rstrip() != "--":
            pending += line[:-1] if delsp else line
            open_paragraph = True
            continue
        out.append(_quote_prefix(depth) + pending + line)
        pending, open_paragraph = "", False
    if open_paragraph:
        out.append(_quote_prefix(pending_depth) + pending)
    return "\n".join(out)


def _keeps_space(before: str, after: str) -> bool:
    if not before or not after or before.isspace() or after.isspace():
        return False
    if before.isdigit() and after.isdigit():
        return False
    return not (_is_unspaced_script(before) or _is_unspaced_script(after))


def _is_unspaced_script(char: str) -> bool:
    return (
        "\u2e80" <= char <= "\u9fff"
        or "\uac00" <= char <= "\ud7af"
        or "\u0e00" <= char <= "\u0e7f"
        or ("\uff00" <= char <= "\uffef")
    )


def _quote_prefix(depth: int) -> str:
    return ">" * depth + " " if depth else ""


# --------------------------------------------------------------------------------------------
# Quote, forward and signature boundaries in plain text
# --------------------------------------------------------------------------------------------

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

_FORWARD_MARKER = re.compile(
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
_ORIGINAL_MARKER = re.compile(
    r"^[\s>*_=-]*+(?:original message|original-nachricht|ursprüngliche nachricht|message d'origine|"
    r"message d’origine|mensaje original|mensagem original|messaggio originale|oorspronkelijk bericht|"
    r"исходное сообщение|原始邮件|原始郵件|元のメッセージ|orijinal mesaj|özgün ileti|thư gốc|pesan asli|"
    r"الرسالة الأصلية|původní zpráva|oryginalna wiadomość|alkuperäinen viesti|opprinnelig melding|"
    r"ursprungligt meddelande|oprindelig meddelelse|reply message|回复的原邮件)[\s*_=:-]*+$",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^\s*+[_\-=—–]{8,}+\s*+$")

# A subject that says the mail forwards something; then an Outlook header block is forwarded content.
FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|r|ref|rif|رد|回复|回覆|答复)\s*[:：]\s*)*"
    r"(?:fwd?|tr|trs|wg|rv|enc|i|fs|vb|vl|doorst|pd|ilt|i̇lt|转发|轉寄|转|пересл|chuyển tiếp|teruskan|"
    r"إعادة توجيه|توجيه)\s*[:：]",
    re.IGNORECASE,
)

_SIGNATURE_DASHES = re.compile(r"^(?:--|-- |—|__)\s*$")
_MOBILE_FOOTER = re.compile(
    r"^(?:sent from (?:my|outlook|mail|yahoo)\b|sent with\b|get outlook for\b|sent via\b|"
    r"von meinem .*gesendet|gesendet von (?:meinem|mobil)|envoyé de mon|envoyé depuis|enviado desde mi|"
    r"enviado do meu|enviado de meu|inviato da|verzonden (?:met|vanaf) mijn|skickat från min|sendt fra min|"
    r"отправлено (?:с|из)|发自我的|從我的|来自我的|iphone'umdan gönderildi|ipad'imden gönderildi|"
    r"dikirim dari|gửi từ|أرسلت من|iphoneから送信|ipadから送信|내 .*에서 보냄)",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^\W*+(?:confidential(?:ity)?(?: notice| note| statement)?\s*[:：]|disclaimer\b|"
    r"this (?:e-?mail|message) (?:and any|is intended|contains|may contain)|"
    r"the (?:contents|information) (?:of|in|contained in) this (?:e-?mail|message)|"
    r"avis de confidentialité|aviso de confidencialidad|aviso legal|vertraulichkeitshinweis|"
    r"информация в (?:этом )?письме конфиденциальна|本邮件(?:及其附件)?(?:含有|包含)|免责声明)",
    re.IGNORECASE,
)
# A line that is nothing but a closing formula: what follows it is the sender's signature block.
_VALEDICTION = re.compile(
    r"^(?:(?:best|kind|warm|warmest|many|with best|yours|sincere|best of)?\s*(?:regards|wishes)|"
    r"br|rgds|regards|cheers|sincerely|yours(?: sincerely| faithfully| truly)?|best|thanks|thank you|"
    r"thanks (?:a lot|again|and regards|in advance(?: for your help)?)|many thanks|"
    r"thank you (?:very much|so much|in advance)|all the best|take care|"
    r"mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|beste grüße|"
    r"liebe grüße|grüße|gruß|gruss|lg|mfg|vielen dank|danke|"
    r"cordialement|bien cordialement|bien à vous|salutations|meilleures salutations|merci|merci beaucoup|"
    r"merci d'avance|bonne journée|"
    r"saludos(?: cordiales)?|un saludo|atentamente|cordialmente|gracias|muchas gracias|mil gracias|"
    r"atenciosamente|abraços|abs|att|obrigad[oa]|muito obrigad[oa]|"
    r"с уважением|спасибо|заранее спасибо|благодарю|всего доброго|"
    r"saygılarımla|saygılar|teşekkürler|teşekkür ederim|kolay gelsin|iyi çalışmalar|"
    r"trân trọng|cảm ơn(?: nhiều| bạn)?|xin cảm ơn|thân ái|"
    r"terima kasih(?: banyak)?|salam|hormat (?:saya|kami)|wassalam|"
    r"مع تحياتي|مع التحية|شكرا|شكراً|شكرًا|وشكرا|تحياتي|"
    r"谢谢|謝謝|此致|敬礼|祝好|顺祝商祺|顺颂商祺|多谢|感谢|"
    r"よろしくお願いします|よろしくお願いいたします|よろしくお願い致します|宜しくお願いします|以上)"
    r"\s*+[,.!！。，、]*+\s*+$",
    re.IGNORECASE,
)
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


def _is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_length(lines: list[str], i: int) -> int:
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


def _is_header_block(lines: list[str], i: int) -> bool:
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


def _next_content(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _region_is_forward(lines: list[str], forward_subject: bool) -> bool:
    """Is the quoted region (a DOM quote container) forwarded content rather than reply history?"""
    seen = 0
    for idx, line in enumerate(lines):
        if not line.strip() or line.strip() in _SENTINELS:
            continue
        if _FORWARD_MARKER.match(line):
            return True
        if forward_subject and (_ORIGINAL_MARKER.match(line) or _is_header_block(lines, idx)):
            return True
        seen += 1
        if seen >= 3:
            return False
    return False


def _reply_parser_cut(text: str, lines: list[str]) -> int | None:
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


def split_message(text: str, *, subject: str = "") -> TextSplit:
    """Cut a (normalised or not) body into new text, quoted history, signature and forwarded text."""
    text = normalise(text)
    lines = text.split("\n")
    n = len(lines)
    kinds = ["new"] * n
    forward_subject = bool(FORWARD_SUBJECT.match(unicodedata.normalize("NFKC", subject)))
    signature_start: int | None = None
    found_cut = False

    def claim_attribution_before(index: int) -> None:
        # "On ... wrote:" (up to three lines) directly above a quote belongs to the quote.
        j = index - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        for start in range(max(0, j - 2), j + 1):
            if (
                kinds[start] == "new"
                and _attribution_length(lines, start)
                and start + _attribution_length(lines, start) - 1 == j
            ):
                for k in range(start, j + 1):
                    kinds[k] = "quoted"
                return

    i = 0
    while i < min(n, MAX_LINES_SPLIT):
        stripped = lines[i].strip()
        if not stripped:
            i += 1  # an empty line starts nothing and is part of what surrounds it
            continue
        if stripped == QUOTE_START:
            depth, j = 1, i + 1
            while j < n and depth:
                if lines[j].strip() == QUOTE_START:
                    depth += 1
                elif lines[j].strip() == QUOTE_END:
                    depth -= 1
                j += 1
            kind = "forwarded" if _region_is_forward(lines[i + 1 : j], forward_subject) else "quoted"
            for k in range(i, j):
                kinds[k] = kind
            claim_attribution_before(i)
            found_cut = True
            i = j
            continue
        if stripped in (QUOTE_END, SIGNATURE_START):
            kinds[i] = "marker"
            if stripped == SIGNATURE_START and signature_start is None:
                signature_start = i
            i += 1
            continue
        if _is_quote_line(lines[i]):
            kinds[i] = "quoted"
            claim_attribution_before(i)
            found_cut = True
            i += 1
            continue
        cut_kind: str | None = None
        if _FORWARD_MARKER.match(lines[i]):
            cut_kind = "forwarded"
        elif _ORIGINAL_MARKER.match(lines[i]) or (
            _RULE_LINE.match(lines[i])
            and (nxt := _next_content(lines, i + 1)) < n
            and (_is_header_block(lines, nxt) or _FORWARD_MARKER.match(lines[nxt]))
        ):
            nxt = _next_content(lines, i + 1)
            is_forward = forward_subject or (nxt < n and bool(_FORWARD_MARKER.match(lines[nxt])))
            cut_kind = "forwarded" if is_forward else "quoted"
        elif _is_header_block(lines, i):
            cut_kind = "forwarded" if forward_subject else "quoted"
        else:
            length = _attribution_length(lines, i)
            if length:
                after = _next_content(lines, i + length)
                if after < n and (_is_quote_line(lines[after]) or lines[after].strip() == QUOTE_START):
                    # Bottom-posting or interleaving: only the attribution and the ">" block are quoted.
                    for k in range(i, i + length):
                        kinds[k] = "quoted"
                    found_cut = True
                    i += length
                    continue
                cut_kind = "quoted"
        if cut_kind is not None:
            for k in range(i, n):
                kinds[k] = cut_kind
            found_cut = True
            break
        i += 1

    if i >= MAX_LINES_SPLIT:
        # Past the limit only the cheap sign is read: a ">" line is still quoted history.
        for k in range(i, n):
            if kinds[k] == "new" and _is_quote_line(lines[k]):
                kinds[k] = "quoted"
    if not found_cut:
        cut = _reply_parser_cut(text, lines)
        if cut is not None and cut > 0:
            for k in range(cut, n):
                kinds[k] = "forwarded" if forward_subject else "quoted"

    new_lines = [k for k in range(n) if kinds[k] == "new"]
    signature_start = _signature_start(lines, new_lines, signature_start)
    new = [lines[k] for k in new_lines if signature_start is None or k < signature_start]
    signature = [lines[k] for k in new_lines if signature_start is not None and k >= signature_start]
    return TextSplit(
        new=_join(new),
        quoted=_join(lines[k] for k in range(n) if kinds[k] == "quoted"),
        signature=_join(signature),
        forwarded=_join(lines[k] for k in range(n) if kinds[k] == "forwarded"),
    )


def _join(lines: object) -> str:
    assert not isinstance(lines, str)
    kept = [line for line in lines if line.strip() not in _SENTINELS]  # type: ignore[attr-defined]
    return strip_sentinels("\n".join(kept)).strip("\n")


def _signature_start(lines: list[str], new_lines: list[int], marked: int | None) -> int | None:
    """First line of the signature among the new lines, or None."""
    content_seen = False
    for pos, k in enumerate(new_lines[:MAX_LINES_SPLIT]):
        if marked is not None and k >= marked:
            return marked
        stripped = lines[k].strip()
        if not stripped:
            continue
        if content_seen and (_SIGNATURE_DASHES.match(lines[k]) or _MOBILE_FOOTER.match(stripped)):
            return k
        if content_seen and _DISCLAIMER.match(stripped):
            return k
        if content_seen and _VALEDICTION.match(stripped):
            following = _following_lines(lines, new_lines, pos + 1)
            if _is_sign_off(lines, following):
                return following[0] if following else None
        content_seen = True
    return marked


# A sign-off is followed by a short block; more non-empty lines than this are more paragraphs.
_SIGN_OFF_BLOCK = 30


def _following_lines(lines: list[str], new_lines: list[int], pos: int) -> list[int]:
    """The non-empty new lines from `pos` on, up to one more than a sign-off block may have (a
    mail of thousands of "Thanks" lines is not re-read to its end for every one of them)."""
    found: list[int] = []
    for k in range(pos, len(new_lines)):
        j = new_lines[k]
        if lines[j].strip():
            found.append(j)
            if len(found) > _SIGN_OFF_BLOCK:
                break
    return found


def _is_sign_off(lines: list[str], following: list[int]) -> bool:
    """After "Regards," comes a short name line and a contact block, not more paragraphs."""
    if not following:
        return True
    if len(following) > _SIGN_OFF_BLOCK:
        return False
    first = lines[following[0]].strip()
    return len(first.split()) <= 6 and len(first) <= 60
