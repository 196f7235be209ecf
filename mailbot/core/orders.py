"""Which Trade Assurance order numbers a mail is about, in the order that matters, and why.

Order numbers are long digit strings (12–20 digits by default) that buyers write in groups
("1625 3498 7612 345", "TA-72359 639 8434 7100"), after words such as "order", "订单号" or
"pedido", or before them ("… nolu sipariş"). The same shape is shared by phone numbers, bank
accounts, tax ids, tracking numbers and timestamps, so every candidate is judged by what stands
next to it: the nearest context word before it decides whether it is an order or a decoy.

Sources rank by freshness: the sender's new text first (with links to the order page, then what
only the HTML version shows, then the signature when an order word marks a number there), then
the subject, forwarded content, attachment names and the text of attachments (a PDF, .msg, text
or CSV file: core/attachments.py). Quoted history only counts for an order of
the case, or in one of our own case threads when nothing fresher names an order. Every accepted
number carries its reasons; every rejected one says why it was rejected.

This module walks the sources of one mail; the stages live beside it: order_config (what an
order number looks like, the matchers), order_scan (digit chains), order_judge (context and
decoys), order_html (what the HTML adds) and order_ranking (the tier table, subject corrections).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailbot.core.order_config import OrderConfig, normalise_digits
from mailbot.core.order_html import html_new_text, link_candidates
from mailbot.core.order_judge import Scan, judge
from mailbot.core.order_ranking import SOURCE_WORDS, Found, add, apply_corrections, ranked
from mailbot.core.order_scan import NON_DIGIT, Budget, Candidate, candidates
from mailbot.core.types import InboundMail, OrderExtraction, RejectedCandidate, ThreadKeys

__all__ = ["NOT_READ", "OrderConfig", "extract_orders", "normalise_digits"]

_ANY_DIGIT = re.compile(r"\d")
#: How the reason of the numbers left unjudged (past `max_candidates`) begins.
NOT_READ = "not read: "
# Longer texts are shortened in the list of rejected numbers a decision keeps.
_MAX_SHOWN = 60
# Sources that only repeat a number without saying what it is: when the text calls the same
# digits a confirmation, phone or account number, they are that (a hotel's subject line
# "Reservation confirmed - 7730 1145 6621" repeats the "Confirmation number:" of its text).
_BARE_SOURCES = frozenset({"subject", "forwarded", "attachment_name"})


@dataclass
class _Judged:
    """What the sources of one mail said so far: numbers kept, numbers refused (with why), and
    digits the mail calls something else. One per `extract_orders` call."""

    config: OrderConfig
    budget: Budget
    rejected: list[RejectedCandidate] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)  # digits the mail calls something else → why

    def consider(
        self, target: dict[str, Found], text: str, source: str, index: int = 0, where: str = ""
    ) -> None:
        """Find, judge and keep the numbers of one source text."""
        if not text or not _ANY_DIGIT.search(text):
            return
        found, scanned, skipped = candidates(normalise_digits(text), source, self.config, self.budget)
        self.settle(target, found, Scan(scanned, self.config), index, where)
        if skipped:
            why = f"{NOT_READ}only the first {self.budget.limit} numbers of a mail are judged"
            self.rejected.append(RejectedCandidate(f"{skipped} more numbers", source, why))

    def settle(
        self, target: dict[str, Found], found: list[Candidate], scan: Scan, index: int = 0, where: str = ""
    ) -> None:
        """Judge each candidate: accepted ones join `target`, the others are kept with their reason."""
        config, budget = self.config, self.budget
        for c in found:
            plausible = config.min_digits <= len(c.digits) <= config.max_digits
            verdict = judge(c, scan, scan.near(c) if plausible else None)
            if not verdict.accepted:
                if verdict.named_otherwise:
                    self.named.setdefault(c.digits, verdict.reasons[0])
                if len(c.digits) >= 9 and budget.reasons > 0:
                    budget.reasons -= 1
                    self.rejected.append(RejectedCandidate(_shown(c.written), c.source, verdict.reasons[0]))
                continue
            if c.source in {"signature", "attachment"} and not verdict.has_context:
                # A signature or a document is full of numbers the sender did not write about.
                why = f"in {SOURCE_WORDS[c.source]} without an order word"
                self.rejected.append(RejectedCandidate(_shown(c.written), c.source, why))
                continue
            add(target, c, verdict, index, where)

    def drop_named(self, accepted: dict[str, Found]) -> None:
        """A number only repeated bare (subject, forwarded, a file name) that the text calls a
        confirmation, phone or account number is that, not an order."""
        for number, found in list(accepted.items()):
            if found.source in _BARE_SOURCES and number in self.named:
                del accepted[number]
                why = f"the text says what it is: {self.named[number]}"
                self.rejected.append(RejectedCandidate(number, found.source, why))


def extract_orders(
    mail: InboundMail,
    config: OrderConfig,
    *,
    case_orders: tuple[str, ...] = (),
    thread: ThreadKeys | None = None,
) -> OrderExtraction:
    """All order numbers the mail is about, most relevant first, each with the reasons it won.

    `case_orders` are the orders of the case the mail already belongs to (from the store): they
    count even in quoted history. `thread` says whether the mail replies inside one of our cases,
    which makes numbers quoted from our own messages eligible when nothing fresher names one.
    """
    accepted: dict[str, Found] = {}
    judged = _Judged(config, Budget(config.max_candidates))
    rejected = judged.rejected

    judged.consider(accepted, mail.new_text, "new_text")
    if mail.html and not any(f.source in {"new_text", "url"} for f in accepted.values()):
        links, link_text = link_candidates(mail.html, config, judged.budget)
        judged.settle(accepted, links, Scan(link_text, config))
        judged.consider(accepted, html_new_text(mail, config), "html")
    judged.consider(accepted, mail.signature, "signature")
    judged.consider(accepted, mail.subject, "subject")
    judged.consider(accepted, mail.forwarded_text, "forwarded")
    for index, attachment in enumerate(mail.attachments):
        if attachment.filename:
            judged.consider(accepted, attachment.filename, "attachment_name", index)
    for index, extracted in enumerate(mail.attachment_texts):
        judged.consider(accepted, extracted.text, "attachment", index, f"attachment {extracted.filename}")
    apply_corrections(mail, config, accepted, rejected)
    judged.drop_named(accepted)

    fresh = bool(accepted)
    in_thread = thread is not None and bool(thread.our_message_ids or thread.case_refs)
    quoted: dict[str, Found] = {}
    judged.consider(quoted, mail.quoted_text, "quoted")
    for number, found in quoted.items():
        if number in accepted:
            accepted[number].reasons.append("also in quoted history")
        elif number in case_orders:
            found.reasons.append("an order of this case")
            accepted[number] = found
        elif in_thread and not fresh:
            found.reasons.append("quoted from our own case thread")
            accepted[number] = found
        else:
            why = "only in quoted history of an earlier message" + (
                "; the new text names another order" if fresh else ""
            )
            rejected.append(RejectedCandidate(number, "quoted", why))

    kept = tuple(dict.fromkeys(r for r in rejected if NON_DIGIT.sub("", r.text) not in accepted))
    return OrderExtraction(orders=ranked(accepted), rejected=kept)


def _shown(written: str) -> str:
    written = written.strip()
    return written if len(written) <= _MAX_SHOWN else written[: _MAX_SHOWN - 1] + "…"
