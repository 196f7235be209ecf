"""The named conditions a routing rule may use, each with the one line supervisors read about it.

A predicate is built once, when the rule file is loaded: its value is checked (an unknown intent, a
bad pattern or a misspelt mailbox is a file error, not a surprise at 3 a.m.) and turned into a
check of the facts about one message. A check answers hit or miss *and why*, in words staff can
read in a decision's trace. The registry is a plain value listing every predicate in the order the
documentation shows them; nothing registers itself on import.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailbot.core.authentication import AUTH_VERDICTS, auth_verdict
from mailbot.core.types import AutomationKind, Intent, Reading, ThreadMatch

#: Regular expressions only ever look at this much text, so one odd 20 MB message cannot stall routing.
MAX_TEXT = 100_000



@dataclass(frozen=True)
class RuleFacts:
    """What the rules may look at: the reading of the mail, where it arrived and the case it joins."""

    reading: Reading
    mailbox: str
    thread: ThreadMatch


@dataclass(frozen=True)
class Verdict:
    hit: bool
    why: str


Check = Callable[[RuleFacts], Verdict]


class ValueProblem(Exception):
    """The value given to a predicate is wrong. `at` points inside it (a list index, a header name)."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.at = at


@dataclass(frozen=True)
class Vocabulary:
    """The names a rule set may refer to besides the fixed ones (intents, automation kinds)."""

    mailboxes: frozenset[str] | None = None  # None: not known here, any name is accepted
    word_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Predicate:
    name: str
    doc: str  # one line, shown to supervisors
    takes: str  # what to write as the value
    example: str  # a line of TOML
    build: Callable[[Any, Vocabulary], Check]


class PredicateRegistry:
    """The predicates by name, in the order the documentation lists them."""

    def __init__(self, predicates: Sequence[Predicate]) -> None:
        self._by_name = {p.name: p for p in predicates}
        if len(self._by_name) != len(predicates):
            raise ValueError("two predicates share a name")

    def get(self, name: str) -> Predicate | None:
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __iter__(self) -> Iterator[Predicate]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


def suggestion(name: str, known: Collection[str]) -> str:
    """ "; did you mean 'x'?" for the closest known name, or the list of names when few and none is close."""
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    if close:
        original = next(k for k in known if k.lower() == close[0])
        return f"; did you mean '{original}'?"
    if 0 < len(known) <= 12:
        return "; known: " + ", ".join(sorted(known))
    return ""


# -- value helpers --------------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    """A single text or a list of texts, as a tuple; anything else is a ValueProblem."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
        if not items:
            raise ValueProblem("the list is empty, so the rule could never match")
    else:
        raise ValueProblem(f"expected a text or a list of texts, got {_kind(value)}")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueProblem(
                f"expected text, got {_kind(item)}", (index,) if isinstance(value, list) else ()
            )
        if not item.strip():
            raise ValueProblem("empty text", (index,) if isinstance(value, list) else ())
    return tuple(item.strip() for item in items)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _pattern(value: Any, at: tuple[str | int, ...] = ()) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ValueProblem(f"expected a pattern (text), got {_kind(value)}", at)
    if not value:
        raise ValueProblem("the pattern is empty", at)
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueProblem(f"not a valid pattern: {exc.msg} at position {exc.pos}", at) from None


def _no_space_script(char: str) -> bool:
    """Scripts written without spaces between words (CJK, Thai...), where word edges cannot be checked."""
    code = ord(char)
    return code >= 0x2E80 or 0x0E00 <= code <= 0x0EFF


class _Phrases:
    """Finds whole words or phrases, any case, any run of spaces between words.

    Phrases that start with a letter of a spaced script go into one pattern led by `\\b`, which lets
    the regex engine skip quickly to plausible first letters (a leading look-behind would not); the
    rest (CJK, Thai, or a leading symbol) go into a second pattern without a start check.
    """

    def __init__(self, phrases: Sequence[str]) -> None:
        bounded: list[str] = []
        free: list[str] = []
        for phrase in phrases:
            body = r"\s+".join(re.escape(word) for word in phrase.split())
            if not _no_space_script(phrase[-1]) and (phrase[-1].isalnum() or phrase[-1] == "_"):
                body += r"(?!\w)"
            first = phrase[0]
            (bounded if (first.isalnum() or first == "_") and not _no_space_script(first) else free).append(
                body
            )
        self._patterns = tuple(
            re.compile(lead + "(?:" + "|".join(group) + ")", re.IGNORECASE)
            for lead, group in ((r"\b", bounded), ("", free))
            if group
        )

    def search(self, text: str) -> re.Match[str] | None:
        found = [m for m in (p.search(text) for p in self._patterns) if m is not None]
        return min(found, key=lambda m: m.start()) if found else None


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= limit else text[: limit - 1] + "…") + '"'


def _listing(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


def _body(facts: RuleFacts) -> str:
    mail = facts.reading.mail
    return (mail.new_text + "\n" + mail.forwarded_text)[:MAX_TEXT]


# -- builders -------------------------------------------------------------------------------------


def _choice(
    label: str,
    actual: Callable[[RuleFacts], str],
    allowed: Callable[[Vocabulary], Collection[str] | None],
    *,
    check_value: Callable[[str], str | None] | None = None,
) -> Callable[[Any, Vocabulary], Check]:
    """A predicate true when one fact (the intent, the mailbox...) is one of the listed values."""

    def build(value: Any, vocabulary: Vocabulary) -> Check:
        wanted = tuple(v.lower() for v in _strings(value))
        known = allowed(vocabulary)
        for index, item in enumerate(wanted):
            at: tuple[str | int, ...] = (index,) if isinstance(value, list) else ()
            if known is not None and item not in known:
                raise ValueProblem(f"unknown {label} '{item}'{suggestion(item, known)}", at)
            if check_value is not None and (problem := check_value(item)) is not None:
                raise ValueProblem(problem, at)

        def check(facts: RuleFacts) -> Verdict:
            got = actual(facts)
            if got.lower() in wanted:
                return Verdict(True, f"{label} is {got}")
            return Verdict(False, f"{label} is {got}, not {_listing(wanted)}")

        return check

    return build


def _flag(
    yes: Callable[[RuleFacts], str | None], said_yes: str, said_no: str
) -> Callable[[Any, Vocabulary], Check]:
    """A true/false predicate. `yes` returns a detail when the fact holds, None when it does not."""

    def build(value: Any, _vocabulary: Vocabulary) -> Check:
        if not isinstance(value, bool):
            raise ValueProblem(f"expected true or false, got {_kind(value)}")

        def check(facts: RuleFacts) -> Verdict:
            detail = yes(facts)
            holds = detail is not None
            why = said_yes + (f" ({detail})" if detail else "") if holds else said_no
            return Verdict(holds == value, why)

        return check

    return build


def _matches(label: str, text: Callable[[RuleFacts], str]) -> Callable[[Any, Vocabulary], Check]:
    def build(value: Any, _vocabulary: Vocabulary) -> Check:
        pattern = _pattern(value)

        def check(facts: RuleFacts) -> Verdict:
            found = pattern.search(text(facts)[:MAX_TEXT])
            if found:
                return Verdict(True, f"{label} matches /{pattern.pattern}/ at {_quote(found.group(0))}")
            return Verdict(False, f"{label} does not match /{pattern.pattern}/")

        return check

    return build


def _contains(label: str, text: Callable[[RuleFacts], str]) -> Callable[[Any, Vocabulary], Check]:
    def build(value: Any, _vocabulary: Vocabulary) -> Check:
        phrases = _strings(value)
        pattern = _Phrases(phrases)

        def check(facts: RuleFacts) -> Verdict:
            found = pattern.search(text(facts)[:MAX_TEXT])
            if found:
                return Verdict(True, f"{label} contains {_quote(found.group(0))}")
            return Verdict(False, f"{label} contains none of {', '.join(_quote(p) for p in phrases)}")

        return check

    return build


def _word_list(value: Any, vocabulary: Vocabulary) -> Check:
    if not isinstance(value, str):
        raise ValueProblem(f"expected the name of a word list, got {_kind(value)}")
    phrases = vocabulary.word_lists.get(value)
    if phrases is None:
        known = vocabulary.word_lists.keys()
        hint = suggestion(value, known) if known else "; define it under [word_lists] first"
        raise ValueProblem(f"no word list named '{value}'{hint}")
    pattern = _Phrases(phrases)

    def check(facts: RuleFacts) -> Verdict:
        for label, text in (("subject", facts.reading.mail.subject), ("text", _body(facts))):
            found = pattern.search(text[:MAX_TEXT])
            if found:
                return Verdict(True, f"{label} contains {_quote(found.group(0))} from word list {value}")
        return Verdict(False, f"no word from word list {value}")

    return check


def _sender(value: Any, _vocabulary: Vocabulary) -> Check:
    patterns = tuple(p.lower() for p in _strings(value))
    for index, item in enumerate(patterns):
        if "@" not in item:
            at: tuple[str | int, ...] = (index,) if isinstance(value, list) else ()
            raise ValueProblem(
                f"'{item}' is not an address; write name@domain, *@domain or name@*, "
                "or use sender_domain for a whole domain",
                at,
            )

    def check(facts: RuleFacts) -> Verdict:
        sender = facts.reading.mail.from_addr
        if not sender:
            return Verdict(False, "the mail has no sender address")
        for item in patterns:
            if fnmatch.fnmatchcase(sender.lower(), item):
                return Verdict(True, f"sender {sender} matches {item}")
        return Verdict(False, f"sender {sender} is not {_listing(patterns)}")

    return check


def _sender_domain(value: Any, _vocabulary: Vocabulary) -> Check:
    domains = tuple(d.lower().lstrip("@").rstrip(".") for d in _strings(value))
    for index, item in enumerate(domains):
        if "@" in item or "." not in item or " " in item:
            at: tuple[str | int, ...] = (index,) if isinstance(value, list) else ()
            raise ValueProblem(f"'{item}' is not a domain like example.com (use sender for addresses)", at)

    def check(facts: RuleFacts) -> Verdict:
        sender = facts.reading.mail.from_addr or ""
        domain = sender.rpartition("@")[2].lower()
        if not domain:
            return Verdict(False, "the mail has no sender address")
        for item in domains:
            if domain == item or domain.endswith("." + item):
                return Verdict(True, f"sender domain {domain} is within {item}")
        return Verdict(False, f"sender domain {domain} is not {_listing(domains)}")

    return check


def _header(value: Any, _vocabulary: Vocabulary) -> Check:
    if not isinstance(value, dict) or not value:
        raise ValueProblem(
            'expected a table of header name = pattern, like header = { "List-Id" = "" }, '
            f"got {_kind(value) if value != {} else 'an empty table'}"
        )
    wanted: list[tuple[str, re.Pattern[str] | None]] = []
    for name, pattern in value.items():
        if not re.fullmatch(r"[!-9;-~]+", name):
            raise ValueProblem(f"'{name}' is not a header name", (name,))
        # An empty pattern means "the header is there, with any value".
        wanted.append((name, _pattern(pattern, (name,)) if pattern != "" else None))

    def check(facts: RuleFacts) -> Verdict:
        said: list[str] = []
        for name, pattern in wanted:
            values = facts.reading.mail.header_all(name)
            if not values:
                return Verdict(False, f"no {name} header")
            if pattern is None:
                said.append(f"has a {name} header")
                continue
            found = next((m for v in values if (m := pattern.search(v[:MAX_TEXT]))), None)
            if found is None:
                return Verdict(False, f"{name} header {_quote(values[0])} does not match /{pattern.pattern}/")
            said.append(f"{name} header matches /{pattern.pattern}/")
        return Verdict(True, "; ".join(said))

    return check


def _auth(value: Any, vocabulary: Vocabulary) -> Check:
    build = _choice(
        "authentication", lambda facts: auth_verdict(facts.reading.mail)[0], lambda _v: AUTH_VERDICTS
    )
    inner = build(value, vocabulary)

    def check(facts: RuleFacts) -> Verdict:
        verdict = inner(facts)
        return Verdict(verdict.hit, f"{verdict.why} ({auth_verdict(facts.reading.mail)[1]})")

    return check


def _language_code(code: str) -> str | None:
    if re.fullmatch(r"[a-z]{2,3}", code):
        return None
    return f"'{code}' is not a language code; write two letters such as en, zh, es"


def _orders(facts: RuleFacts) -> str | None:
    numbers = facts.reading.orders.numbers
    return ", ".join(numbers) if numbers else None


def _attachments(facts: RuleFacts) -> str | None:
    # Inline pictures (logos in a signature) are not what anyone means by "an attachment".
    names = [a.filename or a.content_type for a in facts.reading.mail.attachments if not a.inline]
    return ", ".join(names) if names else None


def _case(facts: RuleFacts) -> str | None:
    if facts.thread.case_ref is None:
        return None
    return f"case {facts.thread.case_ref}: {facts.thread.reason}"


PREDICATES = PredicateRegistry(
    (
        Predicate(
            "mailbox",
            "The mailbox the mail arrived in.",
            "a mailbox name or a list of them",
            'mailbox = "inspection"',
            _choice("mailbox", lambda f: f.mailbox, lambda v: v.mailboxes),
        ),
        Predicate(
            "sender",
            "The sender's address; * stands for any text (noreply@*, *@erp.example.com).",
            "an address pattern or a list of them",
            'sender = ["*@erp.example.com", "noreply@*"]',
            _sender,
        ),
        Predicate(
            "sender_domain",
            "The domain of the sender's address, subdomains included.",
            "a domain or a list of them",
            'sender_domain = "supplier.example.com"',
            _sender_domain,
        ),
        Predicate(
            "subject_matches",
            "The subject matches a pattern (a regular expression, any case).",
            "a pattern",
            'subject_matches = "^(urgent|asap)"',
            _matches("subject", lambda f: f.reading.mail.subject),
        ),
        Predicate(
            "body_matches",
            "What the sender wrote (and forwarded) matches a pattern; quoted mail and signature are skipped.",
            "a pattern",
            r"body_matches = 'refund\s+to\s+my\s+card'",
            _matches("text", _body),
        ),
        Predicate(
            "subject_contains",
            "The subject contains one of these words or phrases (whole words, any case).",
            "a word or phrase, or a list of them",
            'subject_contains = ["urgent", "asap"]',
            _contains("subject", lambda f: f.reading.mail.subject),
        ),
        Predicate(
            "body_contains",
            "What the sender wrote (and forwarded) contains one of these words or phrases.",
            "a word or phrase, or a list of them",
            'body_contains = ["chargeback", "lawyer"]',
            _contains("text", _body),
        ),
        Predicate(
            "word_list",
            "The subject or text contains a word from a list defined under [word_lists].",
            "the name of a word list",
            'word_list = "legal_threats"',
            _word_list,
        ),
        Predicate(
            "has_order_number",
            "The mail names at least one Trade Assurance order number.",
            "true or false",
            "has_order_number = true",
            _flag(_orders, "has an order number", "has no order number"),
        ),
        Predicate(
            "language",
            "The language of what the sender wrote.",
            "a language code (en, zh, es…) or a list of them",
            'language = ["es", "pt"]',
            _choice("language", lambda f: f.reading.language, lambda _v: None, check_value=_language_code),
        ),
        Predicate(
            "automation",
            "Who wrote the mail: human, or which kind of machine "
            "(auto_reply, bounce, auto_generated, list, noreply, own).",
            "a kind or a list of them",
            'automation = ["auto_reply", "bounce"]',
            _choice(
                "automation",
                lambda f: f.reading.automation.kind.value,
                lambda _v: tuple(k.value for k in AutomationKind),
            ),
        ),
        Predicate(
            "has_attachment",
            "The mail has an attached file (pictures inside a signature do not count).",
            "true or false",
            "has_attachment = true",
            _flag(_attachments, "has an attachment", "has no attachment"),
        ),
        Predicate(
            "header",
            'Mail headers match patterns; an empty pattern "" only asks that the header is there.',
            "a table of header name = pattern",
            'header = { "X-Mailer" = "^SAP" }',
            _header,
        ),
        Predicate(
            "auth",
            "Our mail server confirmed the sender's domain (pass), found it forged (fail) or neither (none).",
            "pass, fail or none, or a list of them",
            'auth = "fail"',
            _auth,
        ),
        Predicate(
            "intent",
            "What the sender wants, as read from the text (cancellation, report_dispute, status_inquiry…).",
            "an intent or a list of them",
            'intent = ["cancellation", "report_dispute"]',
            _choice(
                "intent", lambda f: f.reading.intent.intent.value, lambda _v: tuple(i.value for i in Intent)
            ),
        ),
        Predicate(
            "joins_case",
            "The mail belongs to an existing case (a reply in our thread, or the same buyer's order).",
            "true or false",
            "joins_case = true",
            _flag(_case, "joins an existing case", "joins no existing case"),
        ),
    )
)
