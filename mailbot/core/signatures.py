"""Where the sender's signature starts: "-- ", a mobile footer, a disclaimer, or a sign-off block."""

from __future__ import annotations

import re

from mailbot.core.quote_markers import MAX_LINES_SPLIT

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


def find_signature_start(lines: list[str], new_lines: list[int], marked: int | None) -> int | None:
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
