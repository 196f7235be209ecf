"""What the sender wants, decided from the supervisors' per-language phrase lists.

Machines first: a bounce is a bounce and an auto-reply an auto-reply, whatever words they echo.
Then conversation: a reply inside one of our case threads is a follow-up, whatever its topic
(the case already has one). Otherwise every lexicon phrase found in the subject (counted 1.5
times: subjects state the topic; half in a reply, whose subject is the thread's old topic), the
new text and forwarded content (counted half) adds its weight to its intent. Codes such as
"PAY-20260214-7788" are identifiers, not words, and a bracketed aside does not break a phrase.

Spam must clearly outweigh every topic, except in mail about none of our services: a buyer names
an order number or a service word ([service] in the lexicons), so mail with neither needs only a
little spam evidence. A topic asked for with a strong phrase both in a fresh subject and in the
text is what the mail is about; otherwise the highest total wins. The reasons name the phrases
that counted, so a supervisor can see which word to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailbot.core.authentication import auth_verdict
from mailbot.core.phrases import Hit, Phrase, PhraseMatcher
from mailbot.core.scripts import NO_SCRIPTS, Scripts
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.core.types import (
    AutomationKind,
    AutomationVerdict,
    InboundMail,
    Intent,
    IntentResult,
    OrderExtraction,
    ThreadKeys,
)

TOPICAL = (
    Intent.CANCELLATION,
    Intent.REPORT_DISPUTE,
    Intent.PAYMENT_QUESTION,
    Intent.ADD_SERVICE,
    Intent.STATUS_INQUIRY,
    Intent.GENERAL_QUESTION,
)
# A meeting invitation is arranged between people who know each other, never a buyer's request.
_INVITATION = "text/calendar"
# Order of preference when two intents score the same: the costlier one to miss first.
_PRIORITY = {intent: rank for rank, intent in enumerate((*TOPICAL, Intent.SPAM))}
# What a buyer asks fits in the first few thousand characters; the rest of a long mail is noise.
_MAX_CHARS = 6000

# A code of letters and digits ("PAY-20260214-778812093311", "INV2026-0087"): an identifier, whose
# letters are not words ("PAY" there is no question about paying).
_CODE = re.compile(r"(?<![\w-])[A-Za-z]{1,8}-?[0-9][\w/-]*")
# A short aside in brackets: "(Dongguan Ruifeng Electronics)", "（深圳工厂）".
# It starts where a run of blanks starts: tried from every blank of a long run, it was quadratic.
_ASIDE = re.compile(r"(?<![ \t])[ \t]*[(（][^()（）\n]{1,80}[)）]")


@dataclass(frozen=True)
class IntentLexicon:
    """The intent phrases of every lexicon language; `Phrase.tag` is the intent's value."""

    phrases: tuple[Phrase, ...] = ()
    subject_factor: float = 1.5
    # A reply's subject ("RE: …") names the topic the thread started with; the new text says what
    # this mail is about, so a reply subject counts for less than a fresh one.
    reply_subject_factor: float = 0.5
    forwarded_factor: float = 0.5
    # Spam needs this much evidence and must beat the best topic.
    spam_threshold: float = 3.0
    # Words that show a mail is about our services (inspection, production monitoring, report,
    # Trade Assurance, the supplier...); `Phrase.tag` is "service". None configured: no such check.
    service_words: tuple[Phrase, ...] = ()
    # Mail about none of our services (no service word, no order number, not in one of our case
    # threads) is not a buyer request: this much spam evidence is enough, whatever else it says.
    off_topic_spam_threshold: float = 1.0
    # A person's mail with no order number and no service word is a request of ours only when it
    # asks for something this plainly (one strong phrase); otherwise it is off-topic, not answered.
    request_weight: float = 2.0
    # A phrase this strong in a fresh subject and another in the new text, both of one topic, state
    # what the buyer wants: that topic wins over the sum of the rest.
    stated_weight: float = 2.0
    # Without an order number a topic needs at least one phrase this heavy: words that only
    # describe a report ("quantity", "packaging", "photos") add up in a question about what reports
    # contain; a complaint about one names the order or says what is wrong ("does not match").
    decisive_weight: float = 1.0
    # Reply and forward prefixes of subjects, and the scripts of the phrases (rules/).
    subjects: SubjectPrefixes = NO_PREFIXES
    scripts: Scripts = NO_SCRIPTS
    _matcher: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _service: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", PhraseMatcher(self.phrases, self.scripts))
        object.__setattr__(self, "_service", PhraseMatcher(self.service_words, self.scripts))


@dataclass
class _Tally:
    scores: dict[Intent, float] = field(default_factory=dict)
    why: dict[Intent, list[tuple[float, str]]] = field(default_factory=dict)
    strongest: dict[Intent, float] = field(default_factory=dict)  # the heaviest single phrase

    def add(self, intent: Intent, amount: float, reason: str, weight: float) -> None:
        self.scores[intent] = self.scores.get(intent, 0.0) + amount
        self.why.setdefault(intent, []).append((amount, reason))
        self.strongest[intent] = max(self.strongest.get(intent, 0.0), weight)


def _false_friend(phrase: Phrase, language: str) -> bool:
    """A short Latin-script word of another language than the mail's: a false friend more often
    than a borrowed word. Vietnamese "sai" (wrong) is Portuguese "sai" (comes out); a mail in one
    language borrows longer words from another ("Saya mau cancel production monitoring")."""
    word = phrase.text.rstrip("*")
    return bool(language) and phrase.language != language and len(word) <= 3 and word.isascii()


def _score(
    tally: _Tally,
    matcher: PhraseMatcher,
    text: str,
    where: str,
    factor: float,
    strong: float = 0.0,
    language: str = "",
) -> dict[Intent, str]:
    """Add the phrases found in one part of the mail; return the intents that had a phrase of at
    least `strong` weight there (with that phrase), when `strong` is given."""
    found: dict[Intent, str] = {}
    seen: set[tuple[str, str]] = set()
    for hit in _find(matcher, text):
        if _false_friend(hit.phrase, language):
            continue
        key = (hit.phrase.tag, hit.phrase.text)
        if key in seen:
            continue  # a phrase counts once per part, however often it is repeated
        seen.add(key)
        try:
            intent = Intent(hit.phrase.tag)
        except ValueError:
            continue
        amount = hit.phrase.weight * factor
        reason = f"{hit.phrase.text!r} ({hit.phrase.language}) in {where} +{amount:g}"
        tally.add(intent, amount, reason, hit.phrase.weight)
        if strong and hit.phrase.weight >= strong:
            found.setdefault(intent, hit.phrase.text)
    return found


def _find(matcher: PhraseMatcher, text: str) -> list[Hit]:
    """Phrases in the text, codes left out, also where a bracketed aside interrupts one: "the
    supplier (Dongguan Ruifeng) has agreed" says "the supplier has agreed"."""
    if _CODE.search(text):
        text = _CODE.sub(lambda m: " " * len(m.group(0)), text)
    hits = matcher.find(text)
    if _ASIDE.search(text):
        hits.extend(matcher.find(_ASIDE.sub("", text)))
    return hits


def _service_word(lexicons: IntentLexicon, *texts: str) -> Hit | None:
    """The first word of our services ([service] in the lexicons) found in the texts, if any."""
    for text in texts:
        hits = lexicons._service.find(text)
        if hits:
            return hits[0]
    return None


def classify_intent(
    mail: InboundMail,
    automation: AutomationVerdict,
    keys: ThreadKeys,
    orders: OrderExtraction,
    language: str,
    lexicons: IntentLexicon,
) -> IntentResult:
    """The intent of one mail, with the phrases (or headers) that decided it."""
    if automation.kind is AutomationKind.BOUNCE:
        return IntentResult(Intent.BOUNCE, 1.0, (f"delivery failure: {automation.reason}",))
    if automation.kind is AutomationKind.AUTO_REPLY:
        return IntentResult(Intent.AUTO_REPLY, 1.0, (f"automatic reply: {automation.reason}",))
    if automation.kind is AutomationKind.OWN:
        return IntentResult(Intent.AUTO_REPLY, 1.0, (f"our own mail came back: {automation.reason}",))

    tally = _Tally()
    subject = lexicons.subjects.strip(mail.subject[:_MAX_CHARS])
    # Only answer prefixes: a forward ("Fwd:") states the topic the sender wants handled.
    is_reply = lexicons.subjects.is_reply(mail.subject)
    subject_factor = lexicons.reply_subject_factor if is_reply else lexicons.subject_factor
    body = mail.new_text if mail.new_text.strip() else ("" if mail.forwarded_text.strip() else mail.text)
    strong = 0.0 if is_reply else lexicons.stated_weight
    in_subject = _score(tally, lexicons._matcher, subject, "the subject", subject_factor, strong, language)
    in_text = _score(tally, lexicons._matcher, body[:_MAX_CHARS], "the text", 1.0, strong, language)
    forwarded = mail.forwarded_text[:_MAX_CHARS]
    _score(tally, lexicons._matcher, forwarded, "forwarded text", lexicons.forwarded_factor, 0.0, language)
    ranked = _ranked(tally)

    if keys.our_message_ids or keys.case_refs:
        how = (
            f"replies to our message {keys.our_message_ids[0]}"
            if keys.our_message_ids
            else f"case reference {keys.case_refs[0]}"
        )
        topic = ranked[0][0].value if ranked and ranked[0][1] > 0 else "none"
        return IntentResult(
            Intent.FOLLOW_UP,
            1.0,
            (f"follow-up in our case thread: {how}", f"topic of the reply: {topic}"),
            ranked,
        )

    spam = tally.scores.get(Intent.SPAM, 0.0)
    best_topic = max((tally.scores.get(i, 0.0) for i in TOPICAL), default=0.0)
    bulk = automation.kind in {AutomationKind.LIST, AutomationKind.AUTO_GENERATED}
    if (spam >= lexicons.spam_threshold and spam > best_topic) or (
        bulk and spam > 0 and best_topic < 1.5 and not orders.orders
    ):
        return IntentResult(Intent.SPAM, spam, _reasons(tally, Intent.SPAM), ranked)
    # A newsletter or a mailing list names no order of ours; whatever it reports about freight
    # rates or inspections, nobody asks us anything. (An ERP's notice names the order: read on.)
    if bulk and not orders.orders:
        why = f"bulk mail ({automation.kind.value}) that names no order number: {automation.reason}"
        return IntentResult(Intent.SPAM, spam, (why, *_reasons(tally, Intent.SPAM)), ranked)
    # Phishing imitates the platform and names order numbers; what gives it away is a sender our
    # server could not authenticate, writing like bulk mail.
    verdict, how = auth_verdict(mail)
    if verdict == "fail" and spam >= lexicons.off_topic_spam_threshold:
        why = f"the sender failed authentication ({how}) and the mail reads like bulk mail"
        return IntentResult(Intent.SPAM, spam, (why, *_reasons(tally, Intent.SPAM)), ranked)
    # A buyer writing to us names an order or one of our services. Mail that does neither and
    # carries signs of bulk mail is selling something, however much it talks about invoices.
    if (
        lexicons.service_words
        and not orders.orders
        and spam >= lexicons.off_topic_spam_threshold
        and _service_word(lexicons, subject, body[:_MAX_CHARS], forwarded) is None
    ):
        why = "about none of our services: no service word, no order number, not a reply to us"
        return IntentResult(Intent.SPAM, spam, (why, *_reasons(tally, Intent.SPAM)), ranked)

    why_off_topic = _off_topic(mail, orders, lexicons, best_topic, subject, body, forwarded)
    if why_off_topic:
        return IntentResult(Intent.OFF_TOPIC, best_topic, (why_off_topic,), ranked)

    # (A general question is what is left when nothing else is decisive, so it needs no such phrase.)
    decisive = 0.0 if orders.orders else lexicons.decisive_weight
    topical = [
        (i, s)
        for i, s in ranked
        if i in TOPICAL and (i is Intent.GENERAL_QUESTION or tally.strongest.get(i, 0.0) >= decisive)
    ]
    # What the buyer asks for in a fresh subject and again in the text, both times in plain words
    # ("Withdraw monitoring booking" / "please withdraw the booking"), is what the mail is about,
    # however many words its details add (the card the fee should go back to).
    stated = [(i, s) for i, s in topical if i in in_subject and i in in_text]
    if stated:
        intent, score = stated[0]
        why = f"asked for in the subject ({in_subject[intent]!r}) and in the text ({in_text[intent]!r})"
        return IntentResult(intent, score, (why, *_reasons(tally, intent)), ranked)
    if topical and topical[0][1] >= 1.0:
        intent, score = topical[0]
        return IntentResult(intent, score, _reasons(tally, intent), ranked)
    reasons = ("no topic phrase weighed enough: a general question",)
    return IntentResult(Intent.GENERAL_QUESTION, topical[0][1] if topical else 0.0, reasons, ranked)


def _off_topic(
    mail: InboundMail,
    orders: OrderExtraction,
    lexicons: IntentLexicon,
    best_topic: float,
    subject: str,
    body: str,
    forwarded: str,
) -> str | None:
    """Why a person's mail is no request of ours, or None when it may be one.

    A buyer names an order number, one of our services, or asks for something in plain words
    (one phrase of `request_weight`). A mail with none of the three is somebody else's business
    that reached our address: answering it with a "general question" reply tells a hotel or a
    colleague about Trade Assurance inspections. A meeting invitation without an order number is
    off-topic whatever its words. Only reached for mail outside our case threads.
    """
    if orders.orders or not (body.strip() or forwarded.strip()):
        return None  # an order is ours; a mail with no text (a bare subject) gives nothing to judge
    invitation = mail.content_type == _INVITATION or any(
        a.content_type == _INVITATION for a in mail.attachments
    )
    if invitation:
        return "off-topic: a meeting invitation, with no order number"
    if not lexicons.service_words or best_topic >= lexicons.request_weight:
        return None
    if _service_word(lexicons, subject, body[:_MAX_CHARS], forwarded) is not None:
        return None
    return (
        "off-topic: no order number, none of our services named, nothing asked for in plain words"
        f" (the strongest topic weighs {best_topic:g}, a request {lexicons.request_weight:g})"
    )


def _ranked(tally: _Tally) -> tuple[tuple[Intent, float], ...]:
    items = sorted(tally.scores.items(), key=lambda kv: (-kv[1], _PRIORITY.get(kv[0], 99)))
    return tuple((intent, round(score, 2)) for intent, score in items)


def _reasons(tally: _Tally, intent: Intent) -> tuple[str, ...]:
    contributions = sorted(tally.why.get(intent, []), key=lambda item: -item[0])
    return tuple(reason for _, reason in contributions[:6])


def intent_phrases(entries: Iterable[tuple[str, str, str, float]]) -> tuple[Phrase, ...]:
    """(intent, language, text, weight) rows → phrases; unknown intent names are the loader's job."""
    return tuple(Phrase(text, intent, language, weight) for intent, language, text, weight in entries)
