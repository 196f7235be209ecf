"""The small frozen values the core passes around.

Everything the pure core knows about a message, a decision or a reply is one of these. They are
frozen so a stage cannot quietly change what an earlier stage saw, and they hold only plain data
so a decision can be stored, compared in a replay and shown to staff as it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """Every fetched message ends in exactly one of these states (nothing is ever dropped)."""

    ROUTED = "routed"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class Intent(StrEnum):
    """What the sender wants; the labels of the buyer-samples corpus."""

    CANCELLATION = "cancellation"
    REPORT_DISPUTE = "report_dispute"
    STATUS_INQUIRY = "status_inquiry"
    ADD_SERVICE = "add_service"
    PAYMENT_QUESTION = "payment_question"
    GENERAL_QUESTION = "general_question"
    FOLLOW_UP = "follow_up"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    SPAM = "spam"
    # Written by a person but not to us about anything we do: a hotel's booking confirmation, a
    # colleague's note sent to the wrong address, a trade-fair invitation. Not answered; staff see it.
    OFF_TOPIC = "off_topic"


class AutomationKind(StrEnum):
    """Why a message is (or is not) machine-written. Anything but HUMAN is never answered."""

    HUMAN = "human"
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, RFC 3834 auto-replied
    BOUNCE = "bounce"  # DSN / NDR
    AUTO_GENERATED = "auto_generated"  # RFC 3834 auto-generated, Precedence bulk/junk, robots
    LIST = "list"  # mailing list traffic
    NOREPLY = "noreply"  # noreply@ / mailer-daemon / postmaster senders
    OWN = "own"  # our own address or our own Message-ID: a loop


@dataclass(frozen=True)
class Attachment:
    """Metadata of one attachment; the bytes stay in the raw message in the ledger."""

    filename: str | None
    content_type: str
    size: int
    inline: bool = False


@dataclass(frozen=True)
class AttachmentText:
    """The text read out of one attachment (a PDF, an Outlook .msg, a text or CSV file), bounded.

    Kept apart from the body: order numbers found here rank below the sender's new text and above
    quoted history, and the decision names the file they came from.
    """

    filename: str
    text: str


@dataclass(frozen=True)
class DeliveryReport:
    """What a bounce (multipart/report or an old-style plain-text NDR) says about which message."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    status: str | None  # e.g. "5.1.1"
    action: str | None  # e.g. "failed"
    permanent: bool
    # What the receiving server said, e.g. "smtp; 550 5.1.1 <x@y>: user unknown" (for staff).
    diagnostic: str | None = None


@dataclass(frozen=True)
class ReceivedHop:
    """One Received header as mail-parser reads it: which server passed the mail on, and when.

    Hop 1 is the first relay (the bottom header). Kept so staff can see the path a mail took.
    """

    hop: int
    from_host: str
    by_host: str
    protocol: str  # the "with" clause, e.g. "ESMTPS"
    id: str
    for_addr: str
    date: datetime | None


@dataclass(frozen=True)
class InboundMail:
    """A parsed message. Parsing never fails: what could not be read is listed in `defects`.

    Addresses are lower-cased bare addresses. Message-IDs are kept without angle brackets.
    """

    sha256: str
    size: int
    message_id: str | None
    subject: str
    from_addr: str | None
    from_name: str
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # every header, decoded, in message order
    content_type: str  # of the top-level part, lower case
    text: str  # whole body as text (text/plain, else HTML converted to text)
    html: str | None  # the HTML body as sent, if any
    new_text: str  # what the sender wrote now: no quoted history, no signature
    quoted_text: str  # quoted history of earlier messages
    signature: str
    forwarded_text: str  # text of forwarded messages (inline or message/rfc822)
    attachments: tuple[Attachment, ...] = ()
    report: DeliveryReport | None = None
    # `text` is the HTML body converted (the mail had no text part): nothing to convert again.
    text_from_html: bool = False
    defects: tuple[str, ...] = ()
    # Message-IDs of a returned message inside a report (its rfc822 part or its returned headers).
    returned_message_ids: tuple[str, ...] = ()
    received: tuple[ReceivedHop, ...] = ()  # the Received chain, first relay first
    attachment_texts: tuple[AttachmentText, ...] = ()  # set by reading (core/attachments.py), not parse

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively; None when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)


@dataclass(frozen=True)
class AutomationVerdict:
    kind: AutomationKind
    reason: str  # which header or text said so, e.g. "Auto-Submitted: auto-replied"
    report: DeliveryReport | None = None
    # Every named check that ran, in order, with hit or miss (the chain stops at the first hit).
    trace: tuple[TraceStep, ...] = ()

    @property
    def is_machine(self) -> bool:
        return self.kind is not AutomationKind.HUMAN


@dataclass(frozen=True)
class OrderRef:
    """One order number the mail is about, with where it was found and why it ranks where it does."""

    number: str  # digits only
    score: float
    source: str  # subject | new_text | quoted | forwarded | html | attachment_name | attachment | url
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedCandidate:
    """A digit string that looked like an order number but was not taken, and why."""

    text: str
    source: str
    reason: str


@dataclass(frozen=True)
class OrderExtraction:
    orders: tuple[OrderRef, ...]
    rejected: tuple[RejectedCandidate, ...] = ()

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(o.number for o in self.orders)


@dataclass(frozen=True)
class Identity:
    """Who "we" are: needed to recognise our own mail and our own case references."""

    addresses: frozenset[str]  # our mailbox addresses, lower case
    message_id_domain: str  # the right-hand side of every Message-ID we generate
    case_tag: str = "Case"  # subjects carry "[Case #K7Q2XZ]"


@dataclass(frozen=True)
class ThreadKeys:
    """What in a message could tie it to an existing case."""

    our_message_ids: tuple[str, ...]  # In-Reply-To / References that we generated
    case_refs: tuple[str, ...]  # case references found in subject (first) and body


@dataclass(frozen=True)
class CaseFacts:
    """The store's view of a candidate case, handed back to the core to decide threading."""

    ref: str
    buyer: str
    status: str
    orders: tuple[str, ...]
    mailbox: str


@dataclass(frozen=True)
class ThreadMatch:
    case_ref: str | None  # None: open a new case
    how: str  # message-id | subject-ref | order-number | new
    reason: str


@dataclass(frozen=True)
class TraceStep:
    """One rule looked at during a decision: hit or miss, and why, in words staff can read."""

    rule: str
    hit: bool
    why: str


@dataclass(frozen=True)
class RouteActions:
    """What the routing rules decided to do with the message."""

    category: str
    template: str | None = None  # reply template name; None: no reply
    ignore_reason: str | None = None  # set: record, do not open a case
    quarantine_reason: str | None = None
    priority: str = "normal"
    queue: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Everything decided about one message, with its own explanation. Applying it is the shell's job."""

    outcome: Outcome
    reason: str
    intent: Intent
    language: str
    orders: OrderExtraction
    automation: AutomationVerdict
    thread: ThreadMatch
    actions: RouteActions
    reply_template: str | None  # None: no reply (machine mail, rule said none, rate limited...)
    trace: tuple[TraceStep, ...] = ()
    ruleset_version: str = ""
    notes: tuple[str, ...] = field(default=())
    # Set when the rules chose a template but a reply guard refused it: which guard, and why.
    reply_block: ReplyBlock | None = None
    # The rule that ended evaluation, or the engine's DEFAULT_RULE name when none did. Carried here
    # so the CLI, the console and replays read one answer instead of reconstructing it from the trace.
    decided_by: str = ""

    @property
    def category(self) -> str:
        return self.actions.category


@dataclass(frozen=True)
class ReplyBlock:
    """Why a message gets no reply although the rules chose a template.

    `guard` is a stable name (machine, recipient, own-address, suppressed, rate-limit-hour,
    rate-limit-day, ceiling) so the service can react to one of them (the ceiling alerts).
    """

    guard: str
    why: str


@dataclass(frozen=True)
class ReplyPlan:
    """A reply ready to render: which template, for whom, in reply to what."""

    template: str
    language: str
    to_addr: str
    from_addr: str
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    message_id: str


@dataclass(frozen=True)
class IntentResult:
    """The intent chosen from the lexicons, with the runner-up scores and the phrases that counted."""

    intent: Intent
    score: float
    reasons: tuple[str, ...] = ()
    scores: tuple[tuple[Intent, float], ...] = ()


@dataclass(frozen=True)
class Reading:
    """Everything the core read out of one message before any rule or store lookup."""

    mail: InboundMail
    automation: AutomationVerdict
    orders: OrderExtraction
    language: str
    intent: IntentResult
    thread_keys: ThreadKeys


@dataclass(frozen=True)
class ThreadCandidates:
    """Cases the store found for a Reading's thread keys; the core decides which (if any) joins."""

    by_message_id: CaseFacts | None = None
    by_ref: tuple[CaseFacts, ...] = ()
    by_order: tuple[CaseFacts, ...] = ()  # open cases of the same buyer sharing an order number


@dataclass(frozen=True)
class SenderHistory:
    """What the store knows about the sender that the loop policy needs."""

    replies_last_hour: int = 0
    replies_last_day: int = 0
    hard_bounced: bool = False  # a reply to this address bounced permanently: never write again
    # Automatic replies to anyone in the last hour: the global ceiling's count.
    replies_total_last_hour: int = 0
