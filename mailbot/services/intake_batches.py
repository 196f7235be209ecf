"""Fetching in batches bounded in bytes as well as in count, and never downloading an over-size mail.

Memory must be bounded by configuration, not by the mail that happens to arrive: before fetching,
the sizes of the messages are asked for (IMAP RFC822.SIZE, a stat for a Maildir). A message over
`max_message_bytes` is fetched as its header block only (BODY.PEEK[HEADER], at most HEADER_LIMIT
bytes); the others are grouped so that one batch holds at most `max_batch_bytes` of mail (a single
message larger than that, but under the message limit, is a batch of its own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mailbot.adapters.ports import HEADER_LIMIT, FetchedMessage, MailSource


def fetch_cost(size: int, max_message_bytes: int) -> int:
    """The bytes a message occupies once fetched: all of it, or only its headers when it is too large."""
    return min(size, HEADER_LIMIT) if size > max_message_bytes else size


def plan_batches(
    uids: Sequence[int], sizes: dict[int, int], *, max_batch_bytes: int, max_message_bytes: int
) -> list[list[int]]:
    """UIDs in order, cut into runs whose fetched bytes stay within `max_batch_bytes`.

    UIDs without a size (expunged since the search) are left out.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid)
        if size is None:
            continue
        cost = fetch_cost(size, max_message_bytes)
        if current and total + cost > max_batch_bytes:
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += cost
    if current:
        batches.append(current)
    return batches


def fetch_batch(
    source: MailSource, uids: Sequence[int], sizes: dict[int, int], *, max_message_bytes: int
) -> Iterator[FetchedMessage]:
    """The messages of one planned batch in UID order: whole, or headers only when over the limit."""
    whole = [uid for uid in uids if sizes[uid] <= max_message_bytes]
    large = [uid for uid in uids if sizes[uid] > max_message_bytes]
    found = {message.uid: message for message in source.fetch(whole)} if whole else {}
    if large:
        found.update((message.uid, message) for message in source.fetch_headers(large))
    for uid in uids:
        message = found.pop(uid, None)
        if message is not None:
            yield message
