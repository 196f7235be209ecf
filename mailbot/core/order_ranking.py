"""Ranking the accepted numbers by where they were found, and the subject's corrections.

Sources rank by freshness (`TIER`, lower first): the sender's new text and its links, then what
only the HTML version shows, the signature, the subject, forwarded content, attachment names, the
text of attachments (a PDF, .msg, text or CSV file: core/attachments.py), and quoted history last.
A new source is one line in `TIER` and one in `SOURCE_WORDS` (how a decision names it to staff);
nothing else here lists the sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.core.order_config import OrderConfig, normalise_digits
from mailbot.core.order_judge import Verdict
from mailbot.core.order_scan import Candidate
from mailbot.core.types import InboundMail, OrderRef, RejectedCandidate

# Lower tier ranks first. The subject ranks below the body: when a reused thread subject carries
# an older order, the order the buyer writes about now comes first.
TIER = {
    "new_text": 0,
    "url": 0,
    "html": 1,
    "signature": 2,
    "subject": 3,
    "forwarded": 4,
    "attachment_name": 5,
    "attachment": 6,  # the text of an attached PDF, .msg, text or CSV file
    "quoted": 7,
}
SOURCE_WORDS = {
    "new_text": "the new text",
    "url": "a link",
    "html": "the HTML body",
    "signature": "the signature",
    "subject": "the subject",
    "forwarded": "forwarded content",
    "attachment_name": "an attachment name",
    "attachment": "an attachment",
    "quoted": "quoted history",
}


@dataclass
class Found:
    number: str
    source: str
    position: tuple[int, int]
    score: float
    reasons: list[str]
    where: str = ""  # the source in words when it is more than the tier says: "attachment PI.pdf"


def add(target: dict[str, Found], c: Candidate, verdict: Verdict, index: int, where: str = "") -> None:
    source = c.source
    existing = target.get(c.digits)
    if existing is not None:
        if source != existing.source:
            existing.reasons.append(f"also in {where or SOURCE_WORDS[source]}")
        existing.score = max(existing.score, verdict.score)
        existing.reasons.extend(r for r in verdict.reasons if r not in existing.reasons)
        return
    target[c.digits] = Found(c.digits, source, (index, c.start), verdict.score, list(verdict.reasons), where)


def ranked(accepted: dict[str, Found]) -> tuple[OrderRef, ...]:
    """The accepted numbers, freshest source first, then in the order they were written."""
    ordered = sorted(accepted.values(), key=lambda f: (TIER[f.source], f.position))
    return tuple(
        OrderRef(
            number=f.number,
            score=round(f.score, 2),
            source=f.source,
            reasons=(f"found in {f.where or SOURCE_WORDS[f.source]}", *dict.fromkeys(f.reasons)),
        )
        for f in ordered
    )


def apply_corrections(
    mail: InboundMail, config: OrderConfig, accepted: dict[str, Found], rejected: list[RejectedCandidate]
) -> None:
    """ "The number in the subject is mistyped": drop subject-only numbers when the text has its own.

    The text says so with a correction word, or shows it: a subject number that is a text number
    with two neighbouring digits swapped is the same order typed twice, and the text's is the one
    written with care (buyers correct the subject in the text, not the other way round)."""
    if not any(f.source == "subject" for f in accepted.values()):
        return
    body = {n: rank for rank, (n, f) in enumerate(accepted.items()) if TIER[f.source] <= TIER["signature"]}
    for number, found in list(accepted.items()):
        if found.source != "subject":
            continue
        twins = [v for v in _neighbour_swaps(number) if v in body]
        twin = min(twins, key=body.__getitem__) if twins else None
        if twin is not None:
            del accepted[number]
            rejected.append(
                RejectedCandidate(
                    number, "subject", f"{twin} with two digits swapped: a typo the text corrects"
                )
            )
    corrections = config.matchers.corrections.find(normalise_digits(mail.new_text))
    if not corrections:
        return
    phrase = corrections[0].phrase.text
    body_numbers = [f for f in accepted.values() if TIER[f.source] <= TIER["signature"]]
    if not body_numbers:
        return
    for number, found in list(accepted.items()):
        if found.source == "subject":
            del accepted[number]
            rejected.append(
                RejectedCandidate(number, "subject", f"the text corrects the subject ({phrase!r})")
            )


def _neighbour_swaps(number: str) -> set[str]:
    """Every other number made by swapping two neighbouring digits of `number`."""
    swaps = {number[:i] + number[i + 1] + number[i] + number[i + 2 :] for i in range(len(number) - 1)}
    swaps.discard(number)
    return swaps
