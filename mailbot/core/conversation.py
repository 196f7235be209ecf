"""Conversation keys: our Message-IDs, case references in subjects, and which case a message joins.

Threading is strict and explainable (design property 6), in this precedence:
our Message-ID in In-Reply-To/References → a case reference in the subject from the case's own buyer
→ the same order number from the same buyer with an open case → a new case. A reference from a
different sender never silently joins a case.
"""

from __future__ import annotations

import hashlib
import re

from mailbot.core.types import CaseFacts, Identity, InboundMail, ThreadCandidates, ThreadKeys, ThreadMatch

#: Case references are six characters from A-Z and 2-9. We *generate* them without the
#: look-alikes I, O (0/1 are not in the alphabet at all), but *accept* the whole A-Z range.
CASE_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CASE_REF_LENGTH = 6

_REF_BODY = r"([A-Za-z2-9]{6})(?![A-Za-z0-9])"
# What people write between the tag and the reference: "Case #…", "case no. …", "case ref. …",
# "Case reference: …", "case number …", "Case ID …".
_REF_MARKER = r"(?:(?:#|:|n[°º]|(?:no|nr|ref|reference|number|id)\b\.?)\s*){0,3}"


def _case_ref_pattern(tag: str) -> re.Pattern[str]:
    # Mail clients mangle the token: "[Case #K7Q2XZ]", "[case#k7q2xz]", "Case #K7Q2XZ", "[Case K7Q2XZ]".
    # Blanks are read only after a "[" and possessively: an optional "\s*" before the tag made every
    # blank of a run a start that read the rest of the run (quadratic; 20,000 blanks took 4 s).
    # Without a bracket the tag itself must not follow a letter or digit, as before.
    return re.compile(
        r"(?:(?<![A-Za-z0-9])(\[)\s*+)?(?<![A-Za-z0-9])"
        + re.escape(tag)
        + r"\s*("
        + _REF_MARKER
        + r")"
        + _REF_BODY,
        re.IGNORECASE,
    )


def case_ref_from_seed(seed: bytes) -> str:
    """A case reference derived from bytes (deterministic, so a retry proposes the same one)."""
    digest = hashlib.sha256(seed).digest()
    return "".join(CASE_REF_ALPHABET[b % len(CASE_REF_ALPHABET)] for b in digest[:CASE_REF_LENGTH])


def format_case_tag(ref: str, identity: Identity) -> str:
    return f"[{identity.case_tag} #{ref}]"


def find_case_refs(text: str, identity: Identity) -> tuple[str, ...]:
    """Case references written in `text`, upper-cased, first occurrence first, no repeats."""
    seen: list[str] = []
    for match in _case_ref_pattern(identity.case_tag).finditer(text):
        bracket, marker, written = match.groups()
        ref = written.upper()
        # A real reference mixes letters and digits or is all letters; "Case 123456" is not ours.
        if ref.isdigit() or ref in seen:
            continue
        # "in case anyone asks", "in case no action is taken": an ordinary word after "case" is not
        # a reference. Ours are written in capitals or with digits; a lower-case word only counts
        # inside the bracketed token or after "#" ("[case#abcdef]", which clients do produce).
        plain_word = not any(ch.isdigit() for ch in written) and not written.isupper()
        if plain_word and not bracket and "#" not in marker:
            continue
        seen.append(ref)
    return tuple(seen)


def is_our_message_id(message_id: str, identity: Identity) -> bool:
    return message_id.lower().rstrip(">").endswith("@" + identity.message_id_domain.lower())


def make_message_id(identity: Identity, seed: str) -> str:
    """A stable Message-ID (without brackets) for a reply, so a retried send is recognisable."""
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]
    return f"mailbot.{digest}@{identity.message_id_domain}"


_RETURNED_MSGID = re.compile(r"(?im)^\s*message-id:\s*<([^<>\s]+)>")


def thread_keys(mail: InboundMail, identity: Identity) -> ThreadKeys:
    """Our Message-IDs and case references in a message, strongest first.

    Besides In-Reply-To/References, our Message-ID counts where a bounce carries the returned
    message (its report, or a `Message-ID:` line of the returned headers): that is how a bounce of
    our reply finds its case. Only our recipients ever saw those IDs, so they cannot be guessed.
    """
    returned = [mail.report.original_message_id] if mail.report and mail.report.original_message_id else []
    returned.extend(mail.returned_message_ids)
    returned.extend(_RETURNED_MSGID.findall(mail.text + "\n" + mail.forwarded_text))
    ours = tuple(
        dict.fromkeys(
            mid
            for mid in (*mail.in_reply_to, *reversed(mail.references), *returned)
            if is_our_message_id(mid, identity)
        )
    )
    refs = find_case_refs(mail.subject, identity)
    body_refs = find_case_refs(mail.new_text + "\n" + mail.quoted_text, identity)
    forwarded_refs = find_case_refs(mail.forwarded_text, identity) if mail.forwarded_text else ()
    return ThreadKeys(
        our_message_ids=ours, case_refs=tuple(dict.fromkeys((*refs, *body_refs, *forwarded_refs)))
    )


def _same_buyer(case: CaseFacts, sender: str | None) -> bool:
    return sender is not None and case.buyer.lower() == sender.lower()


def choose_thread(
    keys: ThreadKeys, candidates: ThreadCandidates, sender: str | None, orders: tuple[str, ...]
) -> ThreadMatch:
    """Pick the case a message joins, or none, saying why in words staff can read."""
    if candidates.by_message_id is not None:
        case = candidates.by_message_id
        if _same_buyer(case, sender):
            return ThreadMatch(case.ref, "message-id", f"replies to our message on case {case.ref}")
        # Someone else answering our mail (a colleague, a forward): still the same conversation,
        # because only our recipients had our Message-ID. Staff see the different sender.
        return ThreadMatch(
            case.ref,
            "message-id",
            f"replies to our message on case {case.ref} (sender {sender} differs from buyer {case.buyer})",
        )
    for case in candidates.by_ref:
        if _same_buyer(case, sender):
            return ThreadMatch(
                case.ref, "subject-ref", f"case reference {case.ref} from the case's own buyer"
            )
    for case in candidates.by_order:
        if _same_buyer(case, sender) and set(case.orders) & set(orders):
            shared = sorted(set(case.orders) & set(orders))[0]
            return ThreadMatch(
                case.ref, "order-number", f"open case {case.ref} of this buyer for order {shared}"
            )
    if candidates.by_ref:
        refs = ", ".join(c.ref for c in candidates.by_ref)
        return ThreadMatch(None, "new", f"case reference {refs} belongs to another buyer; opened a new case")
    if keys.case_refs:
        return ThreadMatch(None, "new", f"case reference {keys.case_refs[0]} is unknown; opened a new case")
    return ThreadMatch(None, "new", "no earlier conversation found")
