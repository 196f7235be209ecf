"""The Protocols the services program against; each adapter implements one.

Services never import imapclient or smtplib directly: they receive one of these, which keeps the
use cases testable against a real server *or* the local Maildir/outbox-folder implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

#: The most bytes of a header block kept for a message too large to download: enough for any real
#: header block, and a bound on what one pathological message can cost.
HEADER_LIMIT = 256 * 1024


class SourceError(Exception):
    """A mailbox could not be reached or read (auth, network, protocol). The message says why."""


class SendError(Exception):
    """A reply could not be handed to the mail server."""

    def __init__(
        self, message: str, *, permanent: bool, recipient_refused: bool = False, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        # The whole message was sent but no answer came (connection lost, or the answer came too
        # late): the server may have taken it. Resending without evidence could deliver it twice.
        self.outcome_unknown = outcome_unknown
        # The server refused the recipient or the message for it (RCPT or DATA), not the sender,
        # the login or the connection: a permanent refusal means the address is to be suppressed.
        self.recipient_refused = recipient_refused


@dataclass(frozen=True)
class FetchedMessage:
    """One message as fetched: all of it, or (`headers_only`) only its header block.

    `size` is the whole message's size on the server (RFC822.SIZE); it differs from `len(raw)` when
    only the headers were fetched, because the message was too large to download.
    """

    uid: int
    raw: bytes
    size: int = -1
    headers_only: bool = False

    @property
    def full_size(self) -> int:
        return self.size if self.size >= 0 else len(self.raw)


class MailSource(Protocol):
    """A mailbox folder seen as UIDVALIDITY + ascending UIDs (IMAP, or a Maildir emulating it)."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    @property
    def uidvalidity(self) -> int: ...

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs greater than `after_uid` that are not yet marked processed, ascending."""
        ...

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """The size in bytes of each of these messages still there (RFC822.SIZE), without reading them.

        Asked before fetching, so a message over the size limit is never downloaded whole.
        """
        ...

    def fetch(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        """The raw bytes of these messages, without changing any flag (BODY.PEEK[])."""
        ...

    def fetch_headers(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        """Only the header block of these messages (BODY.PEEK[HEADER], at most HEADER_LIMIT bytes).

        Each result has `headers_only` set and `size` the size of the whole message.
        """
        ...

    def acknowledge(self, uids: Sequence[int]) -> None:
        """Mark messages processed (keyword + \\Seen, or move), as configured. Never deletes."""
        ...


class SentCopies(Protocol):
    """Where a copy of each reply is kept, so a resend after a crash can be recognised."""

    def contains(self, message_id: str) -> bool: ...
    def put(self, message_id: str, raw: bytes) -> None: ...


class ReplyTransport(Protocol):
    """Hands finished replies to a mail server (or writes them to the local outbox folder)."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(
        self,
        raw: bytes,
        *,
        mail_from: str,
        rcpt_to: Sequence[str],
        on_handover: Callable[[], None] | None = None,
    ) -> None:
        """Raises SendError (permanent or not) when the server refuses.

        `on_handover` is called at the last moment the server cannot yet have the message (for SMTP:
        right before the final "." of DATA). If it raises, the message is not completed.
        """
        ...


@dataclass(frozen=True)
class RenderedReply:
    text: str
    html: str | None
    language: str  # the language actually used (English when the buyer's is missing)
    template: str


class ReplyRenderer(Protocol):
    def render(self, template: str, language: str, context: Mapping[str, object]) -> RenderedReply: ...
