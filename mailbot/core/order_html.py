"""What the HTML version of a mail adds to its text part: order links, and digits it kept whole.

A buyer's client may send a text part that flattened a table or split digits over spans, and a
link to the order page names the order although the reader only sees "this order". The links are
read from the `href`s directly; the HTML is converted to text only when it holds a long digit run
that the text part lacks, and never when the parser's text already is that HTML's conversion.
"""

from __future__ import annotations

import html as html_lib
import re

from mailbot.core.order_config import OrderConfig, normalise_digits
from mailbot.core.order_scan import NON_DIGIT, Budget, Candidate, chains
from mailbot.core.text import html_to_text, split_message
from mailbot.core.types import InboundMail

# Tags never contain "<": a stray "<" (in text, or a tag left open) ends the attempt there instead
# of every "<" scanning to the end of the text (quadratic on "<<<<…").
_INLINE_TAG = re.compile(r"(?i)</?(?:span|b|i|u|em|strong|font|a|small|sup|sub)\b[^<>]*>")
_BLOCK_TAG = re.compile(r"<[^<>]*>")
_LINK_HREF = re.compile(r"""(?i)<a\b[^<>]*?\bhref\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)')""")
# A text without order numbers of its own but with many long runs in its HTML is converted rather
# than searched run by run (each search reads the whole text).
_MAX_RUN_LOOKUPS = 64


def link_candidates(html: str, config: OrderConfig, budget: Budget) -> tuple[list[Candidate], str]:
    """Order ids in the targets of the HTML's links to the order page ("…?orderId=2891…"), and the
    text (the link targets, one a line) their offsets refer to. No conversion: a regex over tags."""
    if "href" not in html.lower():
        return [], ""
    targets: list[str] = []
    for opening in _LINK_HREF.finditer(html):
        target = html_lib.unescape(opening.group(1) if opening.group(1) is not None else opening.group(2))
        if config.matchers.url.search(target):
            targets.append(normalise_digits(target))
    text = "\n".join(dict.fromkeys(targets))
    found: list[Candidate] = []
    for param in config.matchers.url.finditer(text):
        written = param.group(1)
        digits = NON_DIGIT.sub("", written)
        if config.min_digits <= len(digits) <= config.max_digits:
            if budget.left <= 0:
                break
            budget.left -= 1
        found.append(Candidate(digits, written, param.start(1), param.end(1), "url", text))
    return found, text


def html_new_text(mail: InboundMail, config: OrderConfig) -> str:
    """The new text of the HTML version, when it holds digits the text part flattened away.

    Converted only when the text part named no order (it costs), and never when the parser made
    `mail.text` from this very HTML: then the parser's new text is already that conversion."""
    html = mail.html or ""
    if mail.text_from_html or not _html_adds_digits(html, mail.text, config):
        return ""
    return split_message(html_to_text(html, mark_quotes=True)).new


def _html_adds_digits(html: str, text: str, config: OrderConfig) -> bool:
    """Does the HTML hold a long digit run the text version lacks? A cheap look before converting."""
    visible = normalise_digits(html_lib.unescape(_BLOCK_TAG.sub(" ", _INLINE_TAG.sub("", html))))
    plain = normalise_digits(text)
    known = NON_DIGIT.sub("", plain)
    seen = {NON_DIGIT.sub("", plain[s:e]) for s, e, _ in chains(plain, config)}
    lookups = 0
    for s, e, _ in chains(visible, config):
        run = NON_DIGIT.sub("", visible[s:e])
        if len(run) < 9 or run in seen:
            continue
        lookups += 1
        if lookups > _MAX_RUN_LOOKUPS or run not in known:
            return True
    return False
