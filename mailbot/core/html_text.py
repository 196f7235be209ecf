"""HTML bodies as readable text, with the quote and signature containers of mail clients fenced.

HTML quote containers (Gmail's `.gmail_quote`, `blockquote[type=cite]`, Outlook's `#divRplyFwdMsg`
...) are marked at DOM level before conversion (inscriptis), so the text splitter sees exact
boundaries instead of guessing. Junk that lxml or inscriptis cannot take falls back to a crude
tag strip: conversion never raises.
"""

from __future__ import annotations

import bisect
import contextlib
import html as html_lib
import re

import lxml.html
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

# Sentinels put into the DOM in front of (and behind) quote and signature containers. Private-use
# characters survive inscriptis and NFKC and never occur in real mail text.
QUOTE_START = "\ue000quote\ue000"
QUOTE_END = "\ue000/quote\ue000"
SIGNATURE_START = "\ue000signature\ue000"
SENTINELS = (QUOTE_START, QUOTE_END, SIGNATURE_START)

# The "strict" CSS profile keeps inline elements glued together: "<span>3855 7935</span><span>4333"
# must stay "3855 79354333", as the buyer's client showed it, not gain a space.
# Table cells are separated by " | " so the digits of neighbouring cells never read as one number.
_INSCRIPTIS_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], table_cell_separator=" | ")


def strip_sentinels(text: str) -> str:
    for mark in SENTINELS:
        text = text.replace(mark, "")
    return text


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
