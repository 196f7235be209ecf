"""The loop-safety policy, in one place: is this mail written by a machine, and what kind?

Anything but HUMAN is never answered (design property 5). Detection is ONE chain of named checks,
tried in a fixed order; each records a hit or a miss (a `TraceStep`, as the rule engine does), the
first hit decides, and its reason names the header or phrase that said so. The decision's trace
shows the chain, so "why was this not answered?" and "why was this answered?" both have an answer.

The order matters only for the kind (and so for the routing rules): our own mail first (a loop),
then bounces (they tell us a reply did not arrive), then RFC 3834 and the de-facto auto-reply
headers, out-of-office wording, mailing lists and bulk mail, robot senders, and the weaker
machine markers last. Everything about bounces (mail-system addresses, reading a report) lives in
`core/bounces.py`; the words that vary by language are data in the lexicons under rules/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mailbot.core import bounces
from mailbot.core.conversation import is_our_message_id
from mailbot.core.phrases import Hit, Phrase, PhraseMatcher
from mailbot.core.scripts import NO_SCRIPTS, Scripts
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.core.types import (
    AutomationKind,
    AutomationVerdict,
    Identity,
    InboundMail,
    TraceStep,
)


@dataclass(frozen=True)
class AutomationConfig:
    """Phrases from the lexicons; (language, phrase) pairs so a reason can name the language."""

    out_of_office_subjects: tuple[tuple[str, str], ...] = ()
    out_of_office_phrases: tuple[tuple[str, str], ...] = ()
    bounce_subjects: tuple[tuple[str, str], ...] = ()
    # Subjects of a mailing list's or a mail system's loop notices ("Loop alert", "Mail loop detected").
    loop_subjects: tuple[tuple[str, str], ...] = ()
    # Out-of-office sentences only count in a short body: a buyer may well mention a holiday.
    max_out_of_office_chars: int = 700
    # Reply prefixes of subjects and the scripts of the lexicon words (rules/lexicons, rules/scripts.toml).
    subjects: SubjectPrefixes = NO_PREFIXES
    scripts: Scripts = NO_SCRIPTS
    _ooo_subject: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _ooo_body: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _bounce_subject: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _loop_subject: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        scripts = self.scripts
        object.__setattr__(
            self, "_ooo_subject", _matcher(self.out_of_office_subjects, "out-of-office", scripts)
        )
        object.__setattr__(self, "_ooo_body", _matcher(self.out_of_office_phrases, "out-of-office", scripts))
        object.__setattr__(self, "_bounce_subject", _matcher(self.bounce_subjects, "bounce", scripts))
        object.__setattr__(self, "_loop_subject", _matcher(self.loop_subjects, "loop", scripts))


def _matcher(pairs: tuple[tuple[str, str], ...], tag: str, scripts: Scripts) -> PhraseMatcher:
    return PhraseMatcher((Phrase(text, tag, language) for language, text in pairs), scripts)


#: How much of a subject or a body the word checks read. A mail system's or an auto-responder's
#: words come first (a subject line, the opening of a failure notice); reading a megabyte subject
#: for every hit made detection cost about 1.4 s per MB, and that budget belongs to the buyer's mail.
MAX_SCAN_CHARS = 32 * 1024


def _head(text: str) -> str:
    """The part of `text` the word checks read (see MAX_SCAN_CHARS)."""
    return text[:MAX_SCAN_CHARS]


def _first(matcher: PhraseMatcher, text: str) -> Hit | None:
    hits = matcher.find(_head(text)) if text else []
    return hits[0] if hits else None


_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply[-_.+]|bounce[s]?[-_.+@]|bounces?$)"
)
#: Administrative addresses of mailing lists (RFC 2142, Mailman, ezmlm, Majordomo, LISTSERV).
_LIST_ADMIN = re.compile(
    r"^(?:owner-.+|.+-owner|.+-bounces(?:\+.*)?|listserv|majordomo|mailman|ezmlm|sympa|lyris|listmaster)$"
)
_SUPPRESS = re.compile(r"(?i)\b(?:all|oof|autoreply)\b")
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Mail-Autoreply", "X-Vacation")
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "List-Help", "Mailing-List", "X-Mailing-List")
#: Challenge/response systems that hold mail until the sender proves to be a person.
_CHALLENGE_HEADERS = ("X-Bluebottle-Request", "X-Boxbe-Status", "X-ChallengeID", "X-Challenge-Id")
_NULL_PATHS = {"", "<>"}


@dataclass(frozen=True)
class _Facts:
    """What several checks look at, computed once per mail."""

    mail: InboundMail
    identity: Identity
    config: AutomationConfig
    sender: str
    local: str
    auto_submitted: str
    return_paths: tuple[str, ...]
    bounce_subject: Hit | None
    ooo_subject: Hit | None

    @classmethod
    def of(cls, mail: InboundMail, identity: Identity, config: AutomationConfig) -> _Facts:
        sender = (mail.from_addr or "").lower()
        return cls(
            mail=mail,
            identity=identity,
            config=config,
            sender=sender,
            local=bounces.local_part(sender),
            auto_submitted=(mail.header("Auto-Submitted") or "").strip().lower(),
            return_paths=bounces.return_path_addresses(mail),
            bounce_subject=_first(config._bounce_subject, mail.subject),
            ooo_subject=_first(config._ooo_subject, mail.subject),
        )

    @property
    def null_path(self) -> bool:
        return any(path in _NULL_PATHS for path in self.return_paths)

    @property
    def machine_headers(self) -> bool:
        return self.null_path or (bool(self.auto_submitted) and not self.auto_submitted.startswith("no"))


#: The rule name of every step of the chain in a decision's trace starts with this.
TRACE_PREFIX = "automation: "

_Check = Callable[[_Facts], AutomationVerdict | None]
# A miss says what the check looked for, so a trace of misses still reads as an explanation.
_CHAIN: list[tuple[str, str, _Check]] = []


def _check(name: str, looks_for: str) -> Callable[[_Check], _Check]:
    def register(function: _Check) -> _Check:
        _CHAIN.append((name, looks_for, function))
        return function

    return register


def detect_automation(mail: InboundMail, identity: Identity, config: AutomationConfig) -> AutomationVerdict:
    """Run the chain. Total: unknown shapes are HUMAN, with every check's miss in the trace."""
    facts = _Facts.of(mail, identity, config)
    trace: list[TraceStep] = []
    for name, looks_for, function in _CHAIN:
        verdict = function(facts)
        if verdict is None:
            trace.append(TraceStep(TRACE_PREFIX + name, False, f"no {looks_for}"))
            continue
        trace.append(TraceStep(TRACE_PREFIX + name, True, f"{verdict.kind.value}: {verdict.reason}"))
        return AutomationVerdict(verdict.kind, verdict.reason, verdict.report, tuple(trace))
    return AutomationVerdict(AutomationKind.HUMAN, "no sign of automation", None, tuple(trace))


def check_names() -> tuple[str, ...]:
    """The checks in the order they run (documentation and tests)."""
    return tuple(name for name, _, _ in _CHAIN)


# -- 1. our own mail coming back: a loop, whatever else it looks like ------------------------------


@_check("own-address", "From or X-Loop naming one of our addresses")
def _own_address(f: _Facts) -> AutomationVerdict | None:
    ours = {a.lower() for a in f.identity.addresses}
    if f.sender and f.sender in ours:
        return AutomationVerdict(AutomationKind.OWN, f"sent from our own address {f.sender}")
    for value in f.mail.header_all("X-Loop"):
        if any(address in value.lower() for address in ours):
            return AutomationVerdict(AutomationKind.OWN, f"X-Loop: {value[:80]} names our own address")
    return None


@_check("own-message-id", "Message-ID of our own domain")
def _own_message_id(f: _Facts) -> AutomationVerdict | None:
    if f.mail.message_id and is_our_message_id(f.mail.message_id, f.identity):
        return AutomationVerdict(AutomationKind.OWN, f"our own Message-ID {f.mail.message_id}")
    return None


# -- 2. bounces ------------------------------------------------------------------------------------


@_check("delivery-status-report", "message/delivery-status part (RFC 3464 DSN)")
def _delivery_status(f: _Facts) -> AutomationVerdict | None:
    report = f.mail.report
    if report is None:
        return None
    if f.mail.content_type == "multipart/report":
        return AutomationVerdict(
            AutomationKind.BOUNCE, "multipart/report; report-type=delivery-status (DSN)", report
        )
    return AutomationVerdict(
        AutomationKind.BOUNCE, f"delivery-status part in a message from {f.sender or 'unknown'}", report
    )


@_check("failed-recipients", "X-Failed-Recipients header")
def _failed_recipients(f: _Facts) -> AutomationVerdict | None:
    failed = f.mail.header("X-Failed-Recipients")
    if not failed:
        return None
    return AutomationVerdict(
        AutomationKind.BOUNCE, f"X-Failed-Recipients: {failed[:80]}", bounces.text_report(f.mail)
    )


@_check("report-without-type", "multipart/report without report-type that reads as a delivery failure")
def _report_without_type(f: _Facts) -> AutomationVerdict | None:
    if f.mail.content_type != "multipart/report" or _report_type(f.mail):
        return None
    if not (bounces.has_failure_codes(_head(f.mail.text)) or f.bounce_subject is not None):
        return None
    return AutomationVerdict(
        AutomationKind.BOUNCE,
        "multipart/report without report-type whose text is a delivery failure",
        bounces.text_report(f.mail),
    )


@_check("mail-system-bounce", "mail-system sender (From, Sender or Return-Path) with a failure notice")
def _mail_system_bounce(f: _Facts) -> AutomationVerdict | None:
    system = _mail_system_address(f)
    if system is None:
        return None
    if f.bounce_subject is None and not bounces.has_failure_codes(_head(f.mail.text)):
        return None
    said = (
        f"non-delivery subject {f.bounce_subject.phrase.text!r}"
        if f.bounce_subject is not None
        else "SMTP status codes"
    )
    return AutomationVerdict(
        AutomationKind.BOUNCE,
        f"{said} in a message from the mail system {system}",
        bounces.text_report(f.mail),
    )


@_check("bounce-subject", "non-delivery subject with a null sender or Auto-Submitted")
def _bounce_subject(f: _Facts) -> AutomationVerdict | None:
    if f.bounce_subject is None or not f.machine_headers:
        return None
    return AutomationVerdict(
        AutomationKind.BOUNCE,
        f"non-delivery subject {f.bounce_subject.phrase.text!r}",
        bounces.text_report(f.mail),
    )


# -- 3. RFC 3834 and the de-facto auto-reply headers -----------------------------------------------


@_check("auto-submitted", "Auto-Submitted other than 'no' (RFC 3834)")
def _auto_submitted(f: _Facts) -> AutomationVerdict | None:
    value = f.auto_submitted
    if not value or value.startswith("no"):
        return None
    # Some out-of-office tools label their replies auto-generated; the words tell them apart.
    says_away = f.ooo_subject is not None or _out_of_office_body(f, True) is not None
    if value.startswith("auto-replied") or says_away:
        return AutomationVerdict(AutomationKind.AUTO_REPLY, f"Auto-Submitted: {value}")
    return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"Auto-Submitted: {value}")


@_check("auto-reply-headers", "X-Autoreply, X-Autorespond, X-Vacation …")
def _auto_reply_headers(f: _Facts) -> AutomationVerdict | None:
    for name in _AUTOREPLY_HEADERS:
        value = (f.mail.header(name) or "").strip()
        if value and value.lower() not in {"no", "false", "0"}:
            return AutomationVerdict(AutomationKind.AUTO_REPLY, f"{name}: {value}")
    return None


@_check("out-of-office-subject", "out-of-office subject in the lexicon languages")
def _ooo_subject(f: _Facts) -> AutomationVerdict | None:
    if f.ooo_subject is None:
        return None
    phrase = f.ooo_subject.phrase
    return AutomationVerdict(
        AutomationKind.AUTO_REPLY, f"out-of-office subject {phrase.text!r} ({phrase.language})"
    )


@_check("out-of-office-body", "out-of-office sentence in a short reply")
def _ooo_body(f: _Facts) -> AutomationVerdict | None:
    found = _out_of_office_body(f, False)
    return AutomationVerdict(AutomationKind.AUTO_REPLY, found) if found else None


# -- 4. lists and bulk mail ------------------------------------------------------------------------


@_check("list-headers", "List-Id, List-Unsubscribe … headers")
def _list_headers(f: _Facts) -> AutomationVerdict | None:
    for name in _LIST_HEADERS:
        value = f.mail.header(name)
        if value is not None:
            return AutomationVerdict(AutomationKind.LIST, f"{name}: {value[:80]}")
    return None


@_check("precedence", "Precedence: bulk, junk, list or auto_reply")
def _precedence(f: _Facts) -> AutomationVerdict | None:
    value = (f.mail.header("Precedence") or "").strip().lower()
    if value == "list":
        return AutomationVerdict(AutomationKind.LIST, "Precedence: list")
    if value in {"bulk", "junk"}:
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"Precedence: {value}")
    if value == "auto_reply":
        return AutomationVerdict(AutomationKind.AUTO_REPLY, "Precedence: auto_reply")
    return None


@_check("list-notice", "mailing-list administrative sender or loop notice")
def _list_notice(f: _Facts) -> AutomationVerdict | None:
    for address in (f.sender, *_sender_headers(f)):
        local = bounces.local_part(address)
        if local and _LIST_ADMIN.match(local):
            return AutomationVerdict(AutomationKind.LIST, f"sender {address} is a mailing list's own address")
    loop = _first(f.config._loop_subject, f.mail.subject)
    if loop is not None:
        return AutomationVerdict(
            AutomationKind.AUTO_GENERATED,
            f"loop notice subject {loop.phrase.text!r} ({loop.phrase.language})",
        )
    return None


# -- 5. robot senders ------------------------------------------------------------------------------


@_check("noreply-sender", "no-reply sender")
def _noreply(f: _Facts) -> AutomationVerdict | None:
    if _NOREPLY.match(f.local) or "noreply" in f.local or "no-reply" in f.local:
        return AutomationVerdict(AutomationKind.NOREPLY, f"sender {f.sender} does not read replies")
    return None


@_check(
    "mail-system-sender", "mail-system sender (MAILER-DAEMON, postmaster …) in From, Sender or Return-Path"
)
def _mail_system_sender(f: _Facts) -> AutomationVerdict | None:
    system = _mail_system_address(f)
    if system is None:
        return None
    if system == f.sender:
        return AutomationVerdict(AutomationKind.NOREPLY, f"sender {f.sender} is a mail system")
    return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"the mail system {system} sent it")


@_check("challenge-response", "challenge/response system headers")
def _challenge(f: _Facts) -> AutomationVerdict | None:
    for name in _CHALLENGE_HEADERS:
        if f.mail.header(name) is not None:
            return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"challenge/response system ({name})")
    return None


# -- 6. other machine markers ----------------------------------------------------------------------


@_check("auto-response-suppress", "X-Auto-Response-Suppress: All, OOF or AutoReply")
def _suppress(f: _Facts) -> AutomationVerdict | None:
    value = (f.mail.header("X-Auto-Response-Suppress") or "").strip()
    if value and _SUPPRESS.search(value):
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"X-Auto-Response-Suppress: {value}")
    return None


@_check("machine-report", "multipart/report or an ARF abuse report")
def _machine_report(f: _Facts) -> AutomationVerdict | None:
    if f.mail.content_type == "multipart/report":
        kind = _report_type(f.mail) or "without report-type"
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"multipart/report; report-type={kind}")
    if any(a.content_type == "message/feedback-report" for a in f.mail.attachments) or f.mail.header(
        "Feedback-Type"
    ):
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, "abuse report (ARF message/feedback-report)")
    return None


@_check("null-return-path", "Return-Path: <> (null sender)")
def _null_return_path(f: _Facts) -> AutomationVerdict | None:
    if f.return_paths and all(path in _NULL_PATHS for path in f.return_paths):
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, "Return-Path: <> (null sender)")
    return None


# -- helpers ---------------------------------------------------------------------------------------


def _report_type(mail: InboundMail) -> str:
    match = re.search(r"(?i)report-type\s*=\s*\"?([\w-]+)", mail.header("Content-Type") or "")
    return match.group(1).lower() if match else ""


def _sender_headers(f: _Facts) -> tuple[str, ...]:
    """Sender and Return-Path addresses (not From): who really sent it, as the servers saw it."""
    found = [p for p in f.return_paths if p]
    for value in f.mail.header_all("Sender"):
        match = re.search(r"[^\s<>\"]+@[^\s<>\"]+", value)
        if match:
            found.append(match.group(0).lower())
    return tuple(dict.fromkeys(found))


def _mail_system_address(f: _Facts) -> str | None:
    for address in (f.sender, *_sender_headers(f)):
        if bounces.is_mail_system(address):
            return address
    return None


def _out_of_office_body(f: _Facts, machine: bool) -> str | None:
    """An out-of-office sentence in a short body that replies to something (or says it twice).

    `machine`: other headers already say a machine wrote it, so one sentence is enough.
    """
    mail, config = f.mail, f.config
    text = mail.new_text or mail.text
    if not text or len(text) > config.max_out_of_office_chars:
        return None
    hits = {hit.phrase.text.lower(): hit.phrase for hit in config._ooo_body.find(text)}
    if not hits:
        return None
    replying = bool(mail.in_reply_to or mail.references or config.subjects.is_reply(mail.subject))
    if not (machine or replying) and len(hits) < 2:
        return None
    phrase = hits[max(hits, key=len)]
    return f"out-of-office text {phrase.text!r} ({phrase.language})"
