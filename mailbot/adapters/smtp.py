"""Handing replies over: to an SMTP server (smtplib), or into a local outbox folder when there is none.

A drain sends every due reply over one SMTP connection. Servers close idle connections, so a
connection found dead when the next message *starts* (the MAIL command fails, or the server answers
421) is reopened once and the message sent on it; nothing of that message had reached the server
yet, so this cannot send it twice. A connection lost *during* a message is not retried here: the
server may or may not have taken the message, and the outbox decides what to do about that.

The hand-over: DATA is written out here rather than by smtplib so that the caller's `on_handover`
runs after the content and right before the final "." — the one line that lets the server accept
the message. Until then a lost connection cannot have delivered anything (safe to resend); after
it, a lost or late answer is ambiguous (`SendError.outcome_unknown`). The answer to the final "."
is awaited `final_reply_timeout` seconds (RFC 5321 §4.5.3.2.6 suggests 10 minutes), much longer than
the other commands, because a slow 250 turned into a timeout is exactly the ambiguous case.

Refusals become `SendError`: 5xx replies are permanent (resending cannot help), 4xx replies and
network trouble are temporary (the outbox retries with backoff).
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from mailbot.adapters.imap import client_tls_context, explain_network_error, is_loopback
from mailbot.adapters.maildir import message_file_name, write_atomically
from mailbot.adapters.oauth import TokenProvider, xoauth2_string
from mailbot.adapters.ports import SendError, SourceError

log = logging.getLogger(__name__)

Security = Literal["tls", "starttls", "plain"]

_DEFAULT_PORTS: dict[str, int] = {"tls": 465, "starttls": 587, "plain": 25}
_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 §4.5.2)


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    host: str
    port: int | None = None  # None: 465 for "tls", 587 for "starttls", 25 for "plain"
    security: Security = "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # AUTH XOAUTH2 instead of a password: called at every connection for an access token.
    token: TokenProvider | None = field(default=None, repr=False, compare=False)
    ca_file: str | None = None
    timeout: float = 30.0
    final_reply_timeout: float = 600.0  # the wait for the answer to DATA's final "."
    local_hostname: str | None = None  # the EHLO name; None: this machine's FQDN

    def __post_init__(self) -> None:
        if self.security not in _DEFAULT_PORTS:
            raise ValueError(f'SMTP security must be "tls", "starttls" or "plain", not {self.security!r}')
        if self.security == "plain" and not is_loopback(self.host):
            raise ValueError(f'SMTP security "plain" is only allowed for a loopback host, not {self.host!r}')
        if self.token is not None and self.username is None:
            raise ValueError("SMTP XOAUTH2 needs the username the token belongs to")
        if self.token is None and (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password go together: set both or neither")
        if self.timeout <= 0 or self.final_reply_timeout <= 0:
            raise ValueError("SMTP timeout must be positive")

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]

    @property
    def server(self) -> str:
        return f"{self.host}:{self.effective_port}"


def _xoauth2(conn: smtplib.SMTP, username: str, token: str) -> None:
    """AUTH XOAUTH2 with the token as initial response; after a 334 error challenge, an empty line
    ends the exchange (as the mechanism requires) and the server's 5xx becomes SMTPAuthenticationError."""
    if not conn.has_extn("auth") or "XOAUTH2" not in conn.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError("the server does not offer AUTH XOAUTH2")

    def respond(challenge: bytes | None = None) -> str:
        return xoauth2_string(username, token) if challenge is None else ""

    conn.auth("XOAUTH2", respond, initial_response_ok=True)


class _Dropped(Exception):
    """The connection was found dead before the message's first command was accepted."""


class SmtpTransport:
    """One SMTP connection per `with` block (one outbox drain), reused for every message."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        self._connect()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        conn: smtplib.SMTP | None = None
        token = None
        if config.token is not None:  # before connecting: a failed refresh leaves no connection open
            try:
                token = config.token()
            except SourceError as exc:  # temporary for the outbox: it retries once the token works
                raise SendError(f"SMTP {config.server}: {exc}", permanent=False) from exc
        try:
            context = client_tls_context(config.ca_file) if config.security != "plain" else None
            if config.security == "tls":
                conn = smtplib.SMTP_SSL(
                    config.host,
                    config.effective_port,
                    local_hostname=config.local_hostname,
                    timeout=config.timeout,
                    context=context,
                )
            else:
                conn = smtplib.SMTP(
                    config.host,
                    config.effective_port,
                    local_hostname=config.local_hostname,
                    timeout=config.timeout,
                )
            _no_delay(conn)
            conn.ehlo()
            if config.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if token is not None and config.username is not None:
                _xoauth2(conn, config.username, token)
            elif config.username is not None and config.password is not None:
                conn.login(config.username, config.password)
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            if conn is not None:
                conn.close()
            error = self._error("connecting", exc)
            refused = isinstance(exc, smtplib.SMTPAuthenticationError)
            if refused and token is not None and config.token is not None:
                config.token.forget(token)  # the next connection asks the provider for a new one
                # A refused token is the account's problem (revoked consent, a lapsed grant), never the
                # reply's: it must not fail a reply for good when met on a reconnect mid-drain.
                raise SendError(str(error), permanent=False) from exc
            raise error from exc
        self._conn = conn
        return conn

    def send(
        self,
        raw: bytes,
        *,
        mail_from: str,
        rcpt_to: Sequence[str],
        on_handover: Callable[[], None] | None = None,
    ) -> None:
        recipients = [rcpt_to] if isinstance(rcpt_to, str) else list(rcpt_to)
        if not recipients:
            raise SendError("a reply without recipients cannot be sent", permanent=True)
        # SMTP wants CRLF line ends; bare LF is refused by hardened servers (SMTP smuggling defences).
        data = _LINE_END.sub(b"\r\n", raw)
        conn = self._conn or self._connect()
        try:
            self._transaction(conn, data, mail_from, recipients, on_handover)
        except _Dropped as dropped:
            self._discard()
            log.info("SMTP: %s dropped the connection (%s); reconnecting once", self.config.server, dropped)
            conn = self._connect()
            try:
                self._transaction(conn, data, mail_from, recipients, on_handover)
            except _Dropped as again:
                self._discard()
                raise SendError(
                    f"SMTP {self.config.server}: connection lost again right after reconnecting ({again})",
                    permanent=False,
                ) from again

    def _transaction(
        self,
        conn: smtplib.SMTP,
        data: bytes,
        mail_from: str,
        recipients: list[str],
        on_handover: Callable[[], None] | None,
    ) -> None:
        server = self.config.server
        reply: bytes | str
        try:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(mail_from, self._mail_options(conn, data, [mail_from, *recipients]))
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"SMTP {server}: {exc}", permanent=True) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from exc
        if code == 421:  # "service closing": the server timed us out between messages
            raise _Dropped(_text(code, reply))
        if code != 250:
            self._reset(conn)
            raise self._refusal(f"refused sender {mail_from}", code, reply)

        refused: dict[str, tuple[int, bytes | str]] = {}
        for rcpt in recipients:
            code, reply = self._step(conn, partial(conn.rcpt, rcpt))
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(recipients):
            self._reset(conn)
            # temporary if any refusal was: a later attempt can still reach that recipient
            code, reply = max(refused.values(), key=lambda refusal: refusal[0] // 100 == 4)
            raise self._refusal(f"refused recipient {', '.join(refused)}", code, reply, recipient=True)

        code, reply = self._step(conn, partial(self._data_command, conn))
        if code != 354:  # the DATA command itself was refused: nothing of the message was sent
            self._reset(conn)
            raise self._refusal("refused the message", code, reply, recipient=True)
        code, reply = self._content(conn, data, on_handover)
        if code != 250:
            self._reset(conn)
            raise self._refusal("refused the message", code, reply, recipient=True)
        if refused:  # sent to the others; resending would duplicate it for them
            log.warning(
                "SMTP: %s accepted the message but refused %s",
                server,
                "; ".join(f"{rcpt} ({_text(*answer)})" for rcpt, answer in refused.items()),
            )

    @staticmethod
    def _data_command(conn: smtplib.SMTP) -> tuple[int, bytes]:
        conn.putcmd("data")
        return conn.getreply()

    def _content(
        self, conn: smtplib.SMTP, data: bytes, on_handover: Callable[[], None] | None
    ) -> tuple[int, bytes | str]:
        """Send the message after 354, call `on_handover`, then the final "." and await the answer."""
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            conn.send(body)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # no final ".": nothing was accepted
            self._discard()
            raise self._error("sending", exc) from exc
        if on_handover is not None:
            try:
                on_handover()
            except BaseException:
                self._discard()  # without the final "." the server drops the message
                raise
        try:
            if conn.sock is not None:
                conn.sock.settimeout(max(self.config.final_reply_timeout, self.config.timeout))
            conn.send(b".\r\n")
            code, reply = conn.getreply()
            if conn.sock is not None:
                conn.sock.settimeout(self.config.timeout)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            error = self._error("waiting for the answer to a message", exc)
            raise SendError(
                f"{error} — the message was sent in full, the server may have taken it",
                permanent=False,
                outcome_unknown=True,
            ) from exc
        if code == 421:
            self._discard()
        return int(code), reply

    def _mail_options(self, conn: smtplib.SMTP, data: bytes, addresses: list[str]) -> list[str]:
        if not conn.does_esmtp:
            return []
        options: list[str] = []
        if conn.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not all(address.isascii() for address in addresses):
            options.append("SMTPUTF8")  # smtplib raises SMTPNotSupportedError if the server lacks it
        return options

    def _step(self, conn: smtplib.SMTP, command: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes | str]:
        """One command after MAIL: a lost connection now means the message's fate is unknown."""
        try:
            code, reply = command()
        except smtplib.SMTPDataError:
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            raise self._error("sending", exc) from exc
        if code == 421:
            self._discard()
        return int(code), reply

    def _reset(self, conn: smtplib.SMTP) -> None:
        """Abort the half-done transaction so the connection can carry the next message."""
        if self._conn is not conn:
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._discard()

    def _refusal(self, what: str, code: int, reply: bytes | str, *, recipient: bool = False) -> SendError:
        permanent = 500 <= code < 600
        return SendError(
            f"SMTP {self.config.server} {what}: {_text(code, reply)}",
            permanent=permanent,
            recipient_refused=recipient,
        )

    def _error(self, action: str, exc: BaseException) -> SendError:
        config = self.config
        who = f" as {config.username}" if config.username else ""
        permanent = False
        if isinstance(exc, smtplib.SMTPResponseException):
            detail = _text(exc.smtp_code, exc.smtp_error)
            permanent = 500 <= exc.smtp_code < 600
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            detail, permanent = str(exc), True  # e.g. no STARTTLS or no AUTH offered: a setup problem
        else:
            detail = explain_network_error(exc, f"{config.timeout:g} s") or str(exc) or type(exc).__name__
        if config.password and len(config.password) >= 4:  # shorter ones would garble ordinary words
            detail = detail.replace(config.password, "***")
        return SendError(f"SMTP {action}{who} at {config.server} failed: {detail}", permanent=permanent)


def _text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(f"{code} {text}".split())


class FolderTransport:
    """Writes each reply to `<Message-ID>.eml` in a folder: the outbox when no SMTP server is set up.

    A resent reply overwrites its own file, so a retry never produces a second copy.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def send(
        self,
        raw: bytes,
        *,
        mail_from: str,
        rcpt_to: Sequence[str],
        on_handover: Callable[[], None] | None = None,
    ) -> None:
        # No hand-over to mark: writing the same reply again replaces its own file, so a reply
        # interrupted here is always safe to write again.
        name = file_name_for(raw)
        try:
            write_atomically(self.path / name, raw)
        except OSError as exc:
            raise SendError(
                f"outbox folder {self.path}: cannot write {name}: {exc.strerror or exc}", permanent=False
            ) from exc


def file_name_for(raw: bytes) -> str:
    """Named after the Message-ID; a message without one is named after its content hash."""
    message_id = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    if message_id is not None and str(message_id).strip("<> \t\r\n"):
        return message_file_name(str(message_id))
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:32]}.eml"


def _no_delay(conn: smtplib.SMTP) -> None:
    """Send small writes at once (TCP_NODELAY).

    The final "." goes out as its own small write after the content, because the outbox marks the
    hand-over between the two. With Nagle's algorithm that write waits for the ACK of the content,
    which the server delays (~40 ms) as it has nothing to say yet: 40 ms lost on every reply.
    """
    if conn.sock is not None:
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket (a test double, a Unix socket): nothing to tune
            pass
