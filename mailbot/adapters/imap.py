"""IMAP over imapclient: the mailbox the worker polls (ImapSource) and the Sent folder (ImapSentCopies).

Whatever goes wrong below this module (network, TLS, authentication, a server's NO or BAD) leaves it
as one `SourceError` whose message is a single line naming the user and the server, because that
line ends up in the health view and the log. The password is never part of it, nor of any repr.

Processed messages are marked, never deleted: the keyword `$MailbotProcessed` plus `\\Seen` (the
default), or additionally moved to another folder. The keyword is set before a move too, so a crash
between COPY and EXPUNGE (servers without MOVE) cannot make the same message look new twice.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.adapters.maildir import bare_message_id
from mailbot.adapters.oauth import TokenProvider
from mailbot.adapters.ports import HEADER_LIMIT, FetchedMessage, SourceError

log = logging.getLogger(__name__)

PROCESSED_KEYWORD = "$MailbotProcessed"
SEEN = "\\Seen"
DELETED = "\\Deleted"

Security = Literal["tls", "starttls", "plain"]
ProcessedAction = Literal["flag", "move"]

_DEFAULT_PORTS: dict[str, int] = {"tls": 993, "starttls": 143, "plain": 143}
_T = TypeVar("_T")
_SIZE_BATCH = 1000  # UIDs per RFC822.SIZE request: a few bytes each in the answer
_BYTES_REPR = re.compile(r"""\bb(['"])(.*?)\1""")


def is_loopback(host: str) -> bool:
    """Only loopback may see a password in clear text: the bytes never leave the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying context (hostname and chain); `ca_file` adds trust for a private or test CA."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)


@dataclass(frozen=True, kw_only=True)
class ImapConfig:
    host: str
    port: int | None = None  # None: 993 for "tls", 143 otherwise
    username: str
    password: str = field(default="", repr=False)
    # XOAUTH2 instead of LOGIN: called at every login for an access token (adapters/oauth.TokenSource).
    token: TokenProvider | None = field(default=None, repr=False, compare=False)
    security: Security = "tls"
    ca_file: str | None = None
    folder: str = "INBOX"
    processed_action: ProcessedAction = "flag"
    move_to: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    batch_size: int = 50
    sent_folder: str | None = "Sent"

    def __post_init__(self) -> None:
        if self.security not in _DEFAULT_PORTS:
            raise ValueError(f'IMAP security must be "tls", "starttls" or "plain", not {self.security!r}')
        if self.token is None and not self.password:
            raise ValueError("IMAP needs a password, or a token source for XOAUTH2")
        if self.security == "plain" and not is_loopback(self.host):
            raise ValueError(
                f'IMAP security "plain" would send the password unencrypted; it is only allowed for a '
                f"loopback host, not {self.host!r}"
            )
        if self.processed_action not in ("flag", "move"):
            raise ValueError(f'processed_action must be "flag" or "move", not {self.processed_action!r}')
        if self.processed_action == "move" and not self.move_to:
            raise ValueError('processed_action "move" needs move_to (the folder processed mail goes to)')
        if self.move_to is not None and self.move_to == self.folder:
            raise ValueError(f"move_to must differ from the polled folder {self.folder!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("IMAP timeouts must be positive")

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]

    @property
    def server(self) -> str:
        return f"{self.host}:{self.effective_port}"


class _Refusal(Exception):
    """A condition we detected ourselves, phrased for `_Connection.describe`."""


class _Connection:
    """One logged-in imapclient session, plus the translation of every library error into SourceError."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.client: Any = None

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except (IMAPClientError, OSError, UnicodeError) as exc:
            raise SourceError(self.describe(action, exc)) from exc

    def describe(self, action: str, exc: BaseException) -> str:
        config = self.config
        detail = _detail(exc, config)
        if len(config.password) >= 4:  # shorter ones would garble ordinary words; nobody uses them
            detail = detail.replace(config.password, "***")
        return f"{action} failed for {config.username} at {config.server}: {detail}"

    def open(self) -> Any:
        config = self.config
        # The token first: a refresh that fails leaves no half-open connection behind.
        token = config.token() if config.token is not None else None
        timeout = imapclient.SocketTimeout(connect=config.connect_timeout, read=config.read_timeout)
        with self.guard("connect"):
            context = client_tls_context(config.ca_file) if config.security != "plain" else None
            client = imapclient.IMAPClient(
                config.host,
                port=config.effective_port,
                ssl=config.security == "tls",
                ssl_context=context,
                timeout=timeout,
            )
        try:
            if config.security == "starttls":
                with self.guard("STARTTLS"):
                    client.starttls(context)
            if token is not None and config.token is not None:
                try:
                    with self.guard("XOAUTH2 login"):
                        client.oauth2_login(config.username, token)
                except SourceError:
                    config.token.forget(token)  # the next login asks the provider for a new one
                    raise
            else:
                with self.guard("login"):
                    client.login(config.username, config.password)
        except SourceError:
            _shutdown(client)
            raise
        self.client = client
        log.debug("IMAP: logged in as %s at %s", config.username, config.server)
        return client

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError) as exc:  # the server may already have hung up
            log.debug("IMAP: logout from %s failed: %s", self.config.server, exc)
            _shutdown(client)

    def require(self) -> Any:
        if self.client is None:
            raise RuntimeError("the IMAP connection is not open: use the object as a context manager")
        return self.client

    def ensure_folder(self, folder: str) -> None:
        client = self.require()
        with self.guard(f"creating folder {folder!r}"):
            if client.folder_exists(folder):
                return
            try:
                client.create_folder(folder)
            except IMAPClientError:
                if not client.folder_exists(folder):  # created concurrently by another client is fine
                    raise
            log.info("IMAP: created folder %r for %s", folder, self.config.username)


def _shutdown(client: Any) -> None:
    try:
        client.shutdown()
    except OSError:
        pass


def explain_network_error(exc: BaseException, timeout_hint: str) -> str | None:
    """Socket, TLS and DNS failures in words an operator can act on; None for anything else."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within the timeout ({timeout_hint})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message
        return f"the server's TLS certificate is not trusted ({why}); set ca_file for a private CA"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (are host and port right?)"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return None


def _detail(exc: BaseException, config: ImapConfig) -> str:
    """The cause on one line."""
    timeouts = f"{config.connect_timeout:g} s to connect, {config.read_timeout:g} s per reply"
    text = explain_network_error(exc, timeouts)
    if text is None and isinstance(exc, IMAPClientAbortError):
        text = f"connection lost ({exc})"
    elif text is None and isinstance(exc, UnicodeError):
        text = "a value is not plain ASCII, which this server does not accept"
    elif text is None:
        # imapclient phrases command failures as "<command> failed: <server text>"; keep the server text.
        text = re.sub(r"^\w+ failed: ", "", str(exc)) or type(exc).__name__
    text = _BYTES_REPR.sub(lambda m: m.group(2), text)  # imaplib puts b'...' reprs into its messages
    return " ".join(text.split())


def uid_set(uids: Sequence[int]) -> str:
    """Compact IMAP sequence set ("3:7,9"): acknowledging thousands of UIDs stays one short command."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


class ImapSource:
    """One IMAP folder seen as UIDVALIDITY + ascending UIDs; open it with `with`.

    With `keep_open` (the worker's polls), a poll that ended cleanly leaves the session logged in
    for the next one, which only SELECTs the folder again (so UIDVALIDITY is read afresh each time):
    an empty poll then costs two round trips instead of a TLS handshake and a login. A session the
    server dropped in between is opened anew; a poll that failed closes it. `close()` logs out.
    """

    def __init__(self, config: ImapConfig, *, keep_open: bool = False) -> None:
        self.config = config
        self.keep_open = keep_open
        self._conn = _Connection(config)
        self._uidvalidity: int | None = None
        self._move_target_ready = False

    def __enter__(self) -> Self:
        conn = self._conn
        if conn.client is not None and self.config.token is not None:
            try:
                self.config.token()  # refreshed ahead of expiry; a failed refresh fails this poll loudly
            except SourceError:
                conn.close()
                raise
        if conn.client is not None:
            try:
                self._select(conn.client)
                return self
            except SourceError as exc:
                log.debug("IMAP: the kept session is gone (%s); logging in again", exc)
                conn.close()
        client = conn.open()
        try:
            self._select(client)
        except SourceError:
            conn.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.keep_open and et is None:
            self._uidvalidity = None
            return
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._uidvalidity = None

    def _select(self, client: Any) -> None:
        folder = self.config.folder
        with self._conn.guard(f"opening folder {folder!r}"):
            info = client.select_folder(folder)
        if not info.get(b"READ-WRITE"):
            raise SourceError(
                self._conn.describe(f"opening folder {folder!r}", _Refusal("the folder is read-only"))
            )
        permanent = {flag.strip(b"()") for flag in info.get(b"PERMANENTFLAGS", (b"\\*",))}
        if self.config.processed_action == "flag" and not permanent & {b"\\*", PROCESSED_KEYWORD.encode()}:
            raise SourceError(
                self._conn.describe(
                    f"opening folder {folder!r}",
                    _Refusal('the server does not keep custom keywords here; set processed_action = "move"'),
                )
            )
        self._uidvalidity = int(info[b"UIDVALIDITY"])

    @property
    def uidvalidity(self) -> int:
        if self._uidvalidity is None:
            raise RuntimeError("the IMAP folder is not open: use ImapSource as a context manager")
        return self._uidvalidity

    def new_uids(self, after_uid: int) -> list[int]:
        client = self._conn.require()
        first = max(after_uid, 0) + 1
        with self._conn.guard("searching for new mail"):
            found = client.search(["UID", f"{first}:*", "NOT", "KEYWORD", PROCESSED_KEYWORD])
        # "n:*" always includes the highest UID, even when it is below n (RFC 3501 6.4.8).
        return sorted(uid for uid in found if uid > after_uid)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each message; a message expunged since the search is simply absent."""
        client = self._conn.require()
        wanted = list(dict.fromkeys(uids))
        found: dict[int, int] = {}
        for start in range(0, len(wanted), _SIZE_BATCH):
            batch = wanted[start : start + _SIZE_BATCH]
            with self._conn.guard("asking for message sizes"):
                response = client.fetch(batch, ["RFC822.SIZE"])
            for uid, item in response.items():
                size = item.get(b"RFC822.SIZE")
                if uid in batch and size is not None:
                    found[uid] = int(size)
        return found

    def fetch(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        """Batches of `batch_size`; each message is released from the batch as it is handed out."""
        return self._fetch(uids, "BODY.PEEK[]", headers_only=False)

    def fetch_headers(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        """The header block only (at most HEADER_LIMIT bytes) and the whole message's size."""
        return self._fetch(uids, f"BODY.PEEK[HEADER]<0.{HEADER_LIMIT}>", headers_only=True)

    def _fetch(self, uids: Sequence[int], part: str, *, headers_only: bool) -> Iterator[FetchedMessage]:
        client = self._conn.require()
        wanted = list(dict.fromkeys(uids))
        size = self.config.batch_size
        items = [part, "RFC822.SIZE"] if headers_only else [part]
        for start in range(0, len(wanted), size):
            batch = wanted[start : start + size]
            with self._conn.guard("fetching messages"):
                response = client.fetch(batch, items)
            for uid in batch:
                item = response.pop(uid, None)
                raw = _body_of(item) if item is not None else None
                if raw is None:  # expunged by someone else since the search
                    log.info("IMAP: UID %s left %s before it could be fetched", uid, self.config.folder)
                    continue
                if headers_only:
                    assert item is not None
                    full = int(item.get(b"RFC822.SIZE", len(raw)))
                    yield FetchedMessage(uid=uid, raw=raw, size=full, headers_only=True)
                else:
                    yield FetchedMessage(uid=uid, raw=raw, size=len(raw))
            del response

    def acknowledge(self, uids: Sequence[int]) -> None:
        if not uids:  # an empty UID set is a BAD command on the wire
            return
        client = self._conn.require()
        config = self.config
        uid_text = uid_set(uids)
        with self._conn.guard("marking messages processed"):
            client.add_flags(uid_text, [PROCESSED_KEYWORD, SEEN], silent=True)
        if config.processed_action != "move":
            return
        assert config.move_to is not None
        if not self._move_target_ready:
            self._conn.ensure_folder(config.move_to)
            self._move_target_ready = True
        with self._conn.guard(f"moving processed messages to {config.move_to!r}"):
            if client.has_capability("MOVE"):
                client.move(uid_text, config.move_to)
                return
            client.copy(uid_text, config.move_to)
            client.add_flags(uid_text, [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uid_text)  # only these UIDs: others' \Deleted mail is not ours to purge
            else:
                log.warning(
                    "IMAP: %s offers neither MOVE nor UIDPLUS; processed messages were copied to %r and "
                    "left in %r flagged \\Deleted",
                    config.server,
                    config.move_to,
                    config.folder,
                )


class ImapSentCopies:
    """Copies of sent replies in the Sent folder, found again by Message-ID after a crash.

    Connects on first use (and once more if the connection dropped in between), so the outbox can
    hold one for a whole drain; use it as a context manager, or call close(), to log out.
    """

    def __init__(self, config: ImapConfig) -> None:
        if not config.sent_folder:
            raise ValueError("ImapSentCopies needs config.sent_folder")
        self.config = config
        self.folder = config.sent_folder
        self._conn = _Connection(config)

    def __enter__(self) -> Self:
        self._ready()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _ready(self) -> Any:
        if self._conn.client is not None:
            return self._conn.client
        client = self._conn.open()
        try:
            self._conn.ensure_folder(self.folder)
            with self._conn.guard(f"opening folder {self.folder!r}"):
                client.select_folder(self.folder, readonly=True)
        except SourceError:
            self._conn.close()
            raise
        return client

    def _retrying(self, action: str, operation: Callable[[Any], _T]) -> _T:
        """A connection that died while idle (server timeout, restart) is reopened once."""
        try:
            with self._conn.guard(action):
                return operation(self._ready())
        except SourceError as exc:
            if not isinstance(exc.__cause__, IMAPClientAbortError | OSError):
                raise
            log.info("IMAP: %s; reconnecting once", exc)
            self._conn.close()
            with self._conn.guard(action):
                return operation(self._ready())

    def contains(self, message_id: str) -> bool:
        wanted = bare_message_id(message_id)
        if not wanted:
            return False
        charset = None if wanted.isascii() else "UTF-8"

        def search(client: Any) -> bool:
            uids = client.search(["HEADER", "Message-ID", wanted], charset=charset)
            if not uids:
                return False
            # HEADER search matches substrings; only an identical Message-ID counts.
            headers = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            return any(_message_id_of(item) == wanted for item in headers.values())

        return self._retrying(f"looking for {wanted} in {self.folder!r}", search)

    def put(self, message_id: str, raw: bytes) -> None:
        self._retrying(
            f"saving a copy of {bare_message_id(message_id)} to {self.folder!r}",
            lambda client: client.append(self.folder, raw, flags=[SEEN]),
        )


IDLE_RENEW_SECONDS = 25 * 60.0  # RFC 2177: servers may drop an IDLE after 30 min; Dovecot's limit is 29


@dataclass(frozen=True)
class IdleTiming:
    """How the IDLE loop paces itself; tests shorten these, production keeps the defaults."""

    renew_seconds: float = IDLE_RENEW_SECONDS  # end and restart IDLE before the server's limit
    check_seconds: float = 1.0  # how often the loop looks at the stop flag while nothing arrives
    first_backoff_seconds: float = 1.0  # after a dropped connection: 1 s, 2 s, 4 s … up to the max
    max_backoff_seconds: float = 60.0


class ImapIdler:
    """Waits for new mail on a dedicated connection (RFC 2177 IDLE) and calls `on_new_mail` at once.

    The mailbox's polling connection is left alone: this one only SELECTs the folder read-only and
    listens. `on_new_mail` is called on an EXISTS response, and once after every (re)connection so
    mail that arrived while the connection was down is not left for the slow poll. A dropped
    connection is reopened with exponential backoff; `run` returns when `stop` is set (within
    `check_seconds`), or at once, returning False, when the server does not offer IDLE.
    """

    def __init__(
        self,
        config: ImapConfig,
        on_new_mail: Callable[[], None],
        stop: threading.Event,
        *,
        timing: IdleTiming = IdleTiming(),
        on_connected: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.on_new_mail = on_new_mail
        self.stop = stop
        self.timing = timing
        self.on_connected = on_connected or (lambda _up: None)
        self.idles_started = 0  # IDLE commands sent, renewals included (for tests and debugging)

    def run(self) -> bool:
        backoff = self.timing.first_backoff_seconds
        while not self.stop.is_set():
            try:
                if not self._session():
                    log.info(
                        "IMAP: %s does not offer IDLE; mail waits for the scheduled poll", self.config.server
                    )
                    return False
                backoff = self.timing.first_backoff_seconds
            except SourceError as exc:
                log.warning("IMAP IDLE: %s; reconnecting in %g s", exc, backoff)
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.timing.max_backoff_seconds)
        return True

    def _session(self) -> bool:
        """One connection, from login until stop or a failure (raised as SourceError)."""
        conn = _Connection(self.config)
        client = conn.open()
        try:
            with conn.guard("asking for capabilities"):
                if not client.has_capability("IDLE"):
                    return False
            with conn.guard(f"opening folder {self.config.folder!r} to wait for mail"):
                client.select_folder(self.config.folder, readonly=True)
            self.on_connected(True)
            self.on_new_mail()  # whatever came while we were not listening
            while not self.stop.is_set():
                self._idle_once(conn, client)
            return True
        finally:
            self.on_connected(False)
            conn.close()

    def _idle_once(self, conn: _Connection, client: Any) -> None:
        """One IDLE command, ended before the renewal limit, on stop, or to check a silent socket."""
        timing = self.timing
        with conn.guard("starting IDLE"):
            client.idle()
        self.idles_started += 1
        started = time.monotonic()
        new_mail = False
        try:
            while not self.stop.is_set() and time.monotonic() - started < timing.renew_seconds:
                asked = time.monotonic()
                with conn.guard("waiting in IDLE"):
                    responses = client.idle_check(timeout=timing.check_seconds)
                if any(_is_bye(item) for item in responses):
                    raise SourceError(conn.describe("waiting in IDLE", _Refusal("the server said BYE")))
                if any(_is_exists(item) for item in responses):
                    new_mail = True
                    break
                if not responses and time.monotonic() - asked < timing.check_seconds / 2:
                    break  # woken with nothing to read: a closed socket looks like this; DONE will tell
        finally:
            # DONE on a dead connection raises here; on stop the connection is closed right after anyway.
            with conn.guard("ending IDLE"):
                _command, late = client.idle_done()
        if new_mail or any(_is_exists(item) for item in late):
            self.on_new_mail()


def _is_exists(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) >= 2 and item[1] == b"EXISTS"


def _is_bye(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) >= 1 and item[0] == b"BYE"


def _body_of(item: dict[bytes, Any]) -> bytes | None:
    """The one body section of a FETCH answer (`BODY[]`, or `BODY[HEADER]<0>` for a partial fetch)."""
    for key, value in item.items():
        if isinstance(key, bytes) and key.startswith(b"BODY[") and isinstance(value, bytes):
            return value
    return None


def _message_id_of(item: dict[bytes, Any]) -> str:
    block = next((value for key, value in item.items() if key.startswith(b"BODY[")), b"")
    header = BytesHeaderParser(policy=compat32).parsebytes(block).get("Message-ID", "")
    return bare_message_id(str(header))
