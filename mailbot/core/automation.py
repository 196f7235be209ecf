"""The loop-safety policy, in one place: is this mail written by a machine, and what kind?

Anything but HUMAN is never answered (design property 5). The checks follow RFC 3834 and what
real auto-responders send: our own address or Message-ID (a loop), delivery status reports and
old-style non-delivery notices, `Auto-Submitted` (where `no` means a person), `X-Autoreply` and
friends, out-of-office subjects and bodies in the lexicon languages, mailing-list headers,
`Precedence: bulk|junk|list`, noreply / mailer-daemon / postmaster senders,
`X-Auto-Response-Suppress` and the null reverse path `Return-Path: <>`.

The first check that fires decides, and its reason names the header or phrase that said so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailbot.core.conversation import is_our_message_id
from mailbot.core.parse import delivery_report_from_text
from mailbot.core.phrases import Hit, Phrase, PhraseMatcher
from mailbot.core.types import AutomationKind, AutomationVerdict, Identity, InboundMail


@dataclass(frozen=True)
class AutomationConfig:
    """Phrases from the lexicons; (language, phrase) pairs so a reason can name the language."""

    out_of_office_subjects: tuple[tuple[str, str], ...] = ()
    out_of_office_phrases: tuple[tuple[str, str], ...] = ()
    bounce_subjects: tuple[tuple[str, str], ...] = ()
    # Out-of-office sentences only count in a short body: a buyer may well mention a holiday.
    max_out_of_office_chars: int = 700
    _ooo_subject: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _ooo_body: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)
    _bounce_subject: PhraseMatcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ooo_subject", _matcher(self.out_of_office_subjects, "out-of-office"))
        object.__setattr__(self, "_ooo_body", _matcher(self.out_of_office_phrases, "out-of-office"))
        object.__setattr__(self, "_bounce_subject", _matcher(self.bounce_subjects, "bounce"))


def _matcher(pairs: tuple[tuple[str, str], ...], tag: str) -> PhraseMatcher:
    return PhraseMatcher(Phrase(text, tag, language) for language, text in pairs)


def _first(matcher: PhraseMatcher, text: str) -> Hit | None:
    hits = matcher.find(text) if text else []
    return hits[0] if hits else None


_DAEMON = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|mailerdaemon|mail-daemon|postmaster|mail\.?delivery)(?:@|$)"
)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply[-_.+]|bounce[s]?[-_.+@])"
)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|antw|r|rif|ref|رد|回复|回覆|答复|ynt|cvp|tr lời)\s*[:：]", re.IGNORECASE
)
_SUPPRESS = re.compile(r"(?i)\b(?:all|oof|autoreply)\b")
_STATUS_CODE = re.compile(r"\b[45]\.\d{1,3}\.\d{1,3}\b")
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Mail-Autoreply", "X-Vacation")
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "List-Help", "Mailing-List", "X-Mailing-List")


def detect_automation(mail: InboundMail, identity: Identity, config: AutomationConfig) -> AutomationVerdict:
    """Decide whether a machine wrote this mail. Total: unknown shapes are HUMAN, with a reason."""
    sender = (mail.from_addr or "").lower()
    local = sender.split("@", 1)[0]
    subject = mail.subject

    # 1. Our own mail coming back is a loop, whatever else it looks like.
    if sender and sender in {a.lower() for a in identity.addresses}:
        return AutomationVerdict(AutomationKind.OWN, f"sent from our own address {sender}")
    if mail.message_id and is_our_message_id(mail.message_id, identity):
        return AutomationVerdict(AutomationKind.OWN, f"our own Message-ID {mail.message_id}")

    # 2. Bounces.
    bounce = _bounce(mail, config, sender)
    if bounce is not None:
        return bounce

    # 3. RFC 3834 and the de-facto auto-reply headers.
    auto_submitted = (mail.header("Auto-Submitted") or "").strip().lower()
    ooo_subject = _first(config._ooo_subject, subject)
    if auto_submitted and not auto_submitted.startswith("no"):
        # Some out-of-office tools label their replies auto-generated; the words tell them apart.
        says_away = ooo_subject is not None or _out_of_office_body(mail, config, True) is not None
        if auto_submitted.startswith("auto-replied") or says_away:
            return AutomationVerdict(AutomationKind.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}")
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"Auto-Submitted: {auto_submitted}")
    for name in _AUTOREPLY_HEADERS:
        value = (mail.header(name) or "").strip()
        if value and value.lower() not in {"no", "false", "0"}:
            return AutomationVerdict(AutomationKind.AUTO_REPLY, f"{name}: {value}")
    if ooo_subject:
        phrase = ooo_subject.phrase
        return AutomationVerdict(
            AutomationKind.AUTO_REPLY, f"out-of-office subject {phrase.text!r} ({phrase.language})"
        )
    body = _out_of_office_body(mail, config, False)
    if body is not None:
        return AutomationVerdict(AutomationKind.AUTO_REPLY, body)

    # 4. Lists and bulk mail.
    for name in _LIST_HEADERS:
        list_value = mail.header(name)
        if list_value is not None:
            return AutomationVerdict(AutomationKind.LIST, f"{name}: {list_value[:80]}")
    precedence = (mail.header("Precedence") or "").strip().lower()
    if precedence == "list":
        return AutomationVerdict(AutomationKind.LIST, "Precedence: list")
    if precedence in {"bulk", "junk"}:
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"Precedence: {precedence}")
    if precedence == "auto_reply":
        return AutomationVerdict(AutomationKind.AUTO_REPLY, "Precedence: auto_reply")

    # 5. Robot senders.
    if _NOREPLY.match(local) or "noreply" in local or "no-reply" in local:
        return AutomationVerdict(AutomationKind.NOREPLY, f"sender {sender} does not read replies")
    if _DAEMON.match(local):
        return AutomationVerdict(AutomationKind.NOREPLY, f"sender {sender} is a mail system")

    # 6. Other machine markers.
    suppress = (mail.header("X-Auto-Response-Suppress") or "").strip()
    if suppress and _SUPPRESS.search(suppress):
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, f"X-Auto-Response-Suppress: {suppress}")
    report_type = _report_type(mail)
    if mail.content_type == "multipart/report" and report_type:
        return AutomationVerdict(
            AutomationKind.AUTO_GENERATED, f"multipart/report; report-type={report_type}"
        )
    return_paths = [v.strip() for v in mail.header_all("Return-Path")]
    if return_paths and all(v in {"<>", "<<>>"} for v in return_paths):
        return AutomationVerdict(AutomationKind.AUTO_GENERATED, "Return-Path: <> (null sender)")
    return AutomationVerdict(AutomationKind.HUMAN, "no sign of automation")


def _report_type(mail: InboundMail) -> str:
    match = re.search(r"(?i)report-type\s*=\s*\"?([\w-]+)", mail.header("Content-Type") or "")
    return match.group(1).lower() if match else ""


def _bounce(mail: InboundMail, config: AutomationConfig, sender: str) -> AutomationVerdict | None:
    local = sender.split("@", 1)[0]
    if mail.report is not None:
        if mail.content_type == "multipart/report":
            return AutomationVerdict(
                AutomationKind.BOUNCE, "multipart/report; report-type=delivery-status (DSN)", mail.report
            )
        return AutomationVerdict(
            AutomationKind.BOUNCE, f"non-delivery report from {sender or 'unknown'}", mail.report
        )
    failed = mail.header("X-Failed-Recipients")
    subject_hit = _first(config._bounce_subject, mail.subject)
    null_path = any(v.strip() in {"<>", "<<>>"} for v in mail.header_all("Return-Path"))
    auto = (mail.header("Auto-Submitted") or "no").strip().lower()
    machine_sender = bool(_DAEMON.match(local)) or not sender
    if failed or (subject_hit and (machine_sender or null_path or not auto.startswith("no"))):
        why = (
            f"X-Failed-Recipients: {failed}"
            if failed or subject_hit is None
            else f"non-delivery subject {subject_hit.phrase.text!r}"
        )
        report = delivery_report_from_text(
            mail.text,
            mail.forwarded_text,
            tuple(a.strip().lower() for a in (failed or "").split(",") if a.strip()),
        )
        return AutomationVerdict(AutomationKind.BOUNCE, why, report)
    if _DAEMON.match(local) and subject_hit is None and _STATUS_CODE.search(mail.text):
        report = delivery_report_from_text(mail.text, mail.forwarded_text)
        return AutomationVerdict(AutomationKind.BOUNCE, f"status codes in a message from {sender}", report)
    return None


def _out_of_office_body(mail: InboundMail, config: AutomationConfig, machine: bool) -> str | None:
    """An out-of-office sentence in a short body that replies to something (or says it twice).

    `machine`: other headers already say a machine wrote it, so one sentence is enough.
    """
    text = mail.new_text or mail.text
    if not text or len(text) > config.max_out_of_office_chars:
        return None
    hits = {hit.phrase.text.lower(): hit.phrase for hit in config._ooo_body.find(text)}
    if not hits:
        return None
    replying = bool(mail.in_reply_to or mail.references or _REPLY_PREFIX.match(mail.subject))
    if not (machine or replying) and len(hits) < 2:
        return None
    phrase = hits[max(hits, key=len)]
    return f"out-of-office text {phrase.text!r} ({phrase.language})"
