"""ImapSource against a real Dovecot: what the worker relies on when it polls a mailbox."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest
from fixtures.servers import DovecotServer

from mailbot.adapters.imap import PROCESSED_KEYWORD, ImapConfig, ImapSource, uid_set
from mailbot.adapters.ports import SourceError

pytestmark = pytest.mark.imap

EML = Path(__file__).resolve().parents[1] / "eml"
PLAIN = (EML / "adapters-plain.eml").read_bytes()
LATIN1 = (EML / "adapters-8bit-latin1.eml").read_bytes()


def small_message(n: int) -> bytes:
    return (
        f"From: buyer{n}@example.test\r\nTo: ta-pm@example.test\r\nSubject: message {n}\r\n"
        f"Message-ID: <adapters-{n}@example.test>\r\n\r\nbody {n}\r\n"
    ).encode()


def sent_commands(caplog: pytest.LogCaptureFixture, verb: str) -> int:
    """How many `verb` commands the client sent, read from imaplib's debug log ("> b'TAG UID FETCH ...")."""
    sent = re.compile(rf"^> b'\S+ (UID )?{verb} ")
    return sum(1 for record in caplog.records if sent.match(record.getMessage()))


# -- reading ---------------------------------------------------------------------------------------


def test_new_messages_are_listed_ascending_and_fetched_byte_for_byte(
    dovecot: DovecotServer, imap_user: str
) -> None:
    uids = [dovecot.append(imap_user, raw) for raw in (PLAIN, LATIN1, small_message(3))]

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert source.new_uids(0) == uids
        fetched = list(source.fetch(uids))

    assert [message.uid for message in fetched] == uids
    assert [message.raw for message in fetched] == [PLAIN, LATIN1, small_message(3)]


def test_new_uids_are_only_those_above_the_cursor(dovecot: DovecotServer, imap_user: str) -> None:
    uids = dovecot.append_many(imap_user, [small_message(n) for n in range(5)])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert source.new_uids(uids[1]) == uids[2:]


def test_cursor_at_the_highest_uid_finds_nothing_although_n_star_matches_it(
    dovecot: DovecotServer, imap_user: str
) -> None:
    uids = dovecot.append_many(imap_user, [small_message(n) for n in range(3)])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert source.new_uids(uids[-1]) == []
        assert source.new_uids(uids[-1] + 100) == []


def test_fetching_leaves_messages_unseen(dovecot: DovecotServer, imap_user: str) -> None:
    uid = dovecot.append(imap_user, PLAIN)

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        list(source.fetch([uid]))

    assert "\\Seen" not in dovecot.flags(imap_user)[uid]


def test_fetch_asks_the_server_one_batch_at_a_time(
    dovecot: DovecotServer, imap_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    uids = dovecot.append_many(imap_user, [small_message(n) for n in range(7)])

    with caplog.at_level(logging.DEBUG, logger="imapclient"), ImapSource(
        dovecot.imap_config(imap_user, batch_size=3)
    ) as source:
        messages = source.fetch(uids)
        first = next(messages)
        after_first = sent_commands(caplog, "FETCH")
        rest = list(messages)

    assert after_first == 1  # the second batch is only requested when the first is used up
    assert sent_commands(caplog, "FETCH") == 3  # 3 + 3 + 1
    assert [first.uid, *(message.uid for message in rest)] == uids


def test_fetch_skips_messages_that_are_gone(dovecot: DovecotServer, imap_user: str) -> None:
    keep, gone = dovecot.append_many(imap_user, [small_message(1), small_message(2)])
    with dovecot.connect(imap_user) as client:
        client.select_folder("INBOX")
        client.delete_messages([gone])
        client.uid_expunge([gone])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert [message.uid for message in source.fetch([keep, gone])] == [keep]


def test_a_non_inbox_folder_can_be_polled(dovecot: DovecotServer, imap_user: str) -> None:
    uid = dovecot.append(imap_user, PLAIN, folder="Support/TA-PM")

    with ImapSource(dovecot.imap_config(imap_user, folder="Support/TA-PM")) as source:
        assert [message.raw for message in source.fetch(source.new_uids(0))] == [PLAIN]
        source.acknowledge([uid])

    assert PROCESSED_KEYWORD in dovecot.flags(imap_user, "Support/TA-PM")[uid]


# -- acknowledging ---------------------------------------------------------------------------------


def test_acknowledge_sets_the_keyword_and_seen_and_hides_the_message(
    dovecot: DovecotServer, imap_user: str
) -> None:
    first, second, third = dovecot.append_many(imap_user, [small_message(n) for n in range(3)])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        source.acknowledge([first, third])
        assert source.new_uids(0) == [second]

    flags = dovecot.flags(imap_user)
    assert {PROCESSED_KEYWORD, "\\Seen"} <= flags[first]
    assert {PROCESSED_KEYWORD, "\\Seen"} <= flags[third]
    assert PROCESSED_KEYWORD not in flags[second]


def test_acknowledged_messages_stay_hidden_in_the_next_session(
    dovecot: DovecotServer, imap_user: str
) -> None:
    first, second = dovecot.append_many(imap_user, [small_message(1), small_message(2)])
    with ImapSource(dovecot.imap_config(imap_user)) as source:
        source.acknowledge([first])

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert source.new_uids(0) == [second]


def test_acknowledging_nothing_sends_no_command(
    dovecot: DovecotServer, imap_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.append(imap_user, PLAIN)

    config = dovecot.imap_config(imap_user)
    with caplog.at_level(logging.DEBUG, logger="imapclient"), ImapSource(config) as source:
        source.acknowledge([])

    assert sent_commands(caplog, "SELECT") == 1  # the log is read correctly ...
    assert sent_commands(caplog, "STORE") == 0  # ... and shows no STORE


def test_move_mode_moves_to_a_folder_it_creates(dovecot: DovecotServer, imap_user: str) -> None:
    first, second = dovecot.append_many(imap_user, [small_message(1), small_message(2)])
    assert "Processed" not in dovecot.folders(imap_user)

    config = dovecot.imap_config(imap_user, processed_action="move", move_to="Processed")
    with ImapSource(config) as source:
        source.acknowledge([first])
        assert source.new_uids(0) == [second]

    assert dovecot.uids(imap_user) == [second]
    moved = dovecot.list_messages(imap_user, "Processed")
    assert [message.raw for message in moved] == [small_message(1)]
    assert {PROCESSED_KEYWORD, "\\Seen"} <= moved[0].flags


def hide_move_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dovecot always offers MOVE; the client is made to believe it does not (the server stays real)."""
    real = imapclient.IMAPClient.has_capability
    monkeypatch.setattr(
        imapclient.IMAPClient, "has_capability",
        lambda self, capability: capability.upper() != "MOVE" and real(self, capability),
    )


def test_move_without_the_move_capability_copies_then_expunges_exactly_those_messages(
    dovecot: DovecotServer, imap_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs, untouched = dovecot.append_many(imap_user, [small_message(n) for n in range(3)])
    with dovecot.connect(imap_user) as client:  # someone else's pending deletion must survive
        client.select_folder("INBOX")
        client.delete_messages([theirs])
    hide_move_capability(monkeypatch)

    config = dovecot.imap_config(imap_user, processed_action="move", move_to="Processed")
    with ImapSource(config) as source:
        source.acknowledge([ours])

    assert dovecot.uids(imap_user) == [theirs, untouched]
    assert "\\Deleted" in dovecot.flags(imap_user)[theirs]
    assert [message.raw for message in dovecot.list_messages(imap_user, "Processed")] == [small_message(0)]


@pytest.mark.parametrize("server_has_move", [True, False])
def test_acknowledging_again_after_a_crash_is_harmless(
    dovecot: DovecotServer, imap_user: str, monkeypatch: pytest.MonkeyPatch, server_has_move: bool
) -> None:
    if not server_has_move:
        hide_move_capability(monkeypatch)
    uid = dovecot.append(imap_user, PLAIN)
    config = dovecot.imap_config(imap_user, processed_action="move", move_to="Processed")
    with ImapSource(config) as source:
        source.acknowledge([uid])

    with ImapSource(config) as source:  # the ledger still lists it as unacknowledged
        source.acknowledge([uid])

    assert dovecot.uids(imap_user) == []
    assert len(dovecot.uids(imap_user, "Processed")) == 1


def test_move_mode_needs_a_target_folder() -> None:
    with pytest.raises(ValueError, match="move_to"):
        ImapConfig(host="127.0.0.1", username="u", password="p", security="plain", processed_action="move")


def test_acknowledging_many_uids_uses_compact_ranges() -> None:
    assert uid_set([7, 3, 4, 5, 9, 10, 12, 4]) == "3:5,7,9:10,12"
    assert uid_set([1]) == "1"


# -- UIDVALIDITY -----------------------------------------------------------------------------------


def test_a_changed_inbox_uidvalidity_is_visible_on_the_next_open(
    dovecot: DovecotServer, imap_user: str
) -> None:
    dovecot.append(imap_user, PLAIN)
    with ImapSource(dovecot.imap_config(imap_user)) as source:
        before = source.uidvalidity

    changed = dovecot.recreate_mailbox(imap_user, "INBOX")

    with ImapSource(dovecot.imap_config(imap_user)) as source:
        assert source.uidvalidity == changed != before


def test_a_recreated_folder_has_a_new_uidvalidity(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.append(imap_user, PLAIN, folder="Inspection")
    with ImapSource(dovecot.imap_config(imap_user, folder="Inspection")) as source:
        before = source.uidvalidity

    dovecot.recreate_mailbox(imap_user, "Inspection")

    with ImapSource(dovecot.imap_config(imap_user, folder="Inspection")) as source:
        assert source.uidvalidity != before
        assert source.new_uids(0) == []


# -- failures --------------------------------------------------------------------------------------


def test_a_wrong_password_names_the_mailbox_user_but_not_the_password(dovecot: DovecotServer) -> None:
    config = dovecot.imap_config("ta-pm@example.test", password="Wr0ng-Pa55word")

    with pytest.raises(SourceError) as caught:
        ImapSource(config).__enter__()

    message = str(caught.value)
    assert message == (
        f"login failed for ta-pm@example.test at 127.0.0.1:{dovecot.imap_port}: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert "Wr0ng-Pa55word" not in message


def test_the_password_is_not_in_the_config_repr() -> None:
    config = ImapConfig(host="imap.example.test", username="ta-pm@example.test", password="s3cret-value")

    assert "s3cret-value" not in repr(config)
    assert "ta-pm@example.test" in repr(config)


def test_a_missing_folder_is_named(dovecot: DovecotServer, imap_user: str) -> None:
    with pytest.raises(SourceError, match=r"opening folder 'Nowhere' failed for user\d+@example.test"):
        ImapSource(dovecot.imap_config(imap_user, folder="Nowhere")).__enter__()


def test_a_refused_connection_is_a_source_error() -> None:
    port = free_closed_port()
    config = ImapConfig(host="127.0.0.1", port=port, username="u", password="p", security="plain")

    expected = rf"connect failed for u at 127\.0\.0\.1:{port}: connection refused"
    with pytest.raises(SourceError, match=expected):
        ImapSource(config).__enter__()


def test_using_the_source_outside_a_with_block_is_a_programming_error(dovecot: DovecotServer) -> None:
    source = ImapSource(dovecot.imap_config("user01@example.test"))

    with pytest.raises(RuntimeError, match="context manager"):
        source.new_uids(0)


# -- transport security ----------------------------------------------------------------------------


def test_implicit_tls_verifies_the_server_against_ca_file(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.append(imap_user, PLAIN)

    with ImapSource(dovecot.imap_config(imap_user, security="tls")) as source:
        assert [message.raw for message in source.fetch(source.new_uids(0))] == [PLAIN]


def test_starttls_verifies_the_server_against_ca_file(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.append(imap_user, PLAIN)

    with ImapSource(dovecot.imap_config(imap_user, security="starttls")) as source:
        assert len(source.new_uids(0)) == 1


def test_an_untrusted_certificate_is_refused(dovecot: DovecotServer, imap_user: str) -> None:
    with pytest.raises(SourceError, match="TLS certificate is not trusted"):
        ImapSource(dovecot.imap_config(imap_user, security="tls", ca_file=None)).__enter__()


def test_plain_imap_is_refused_for_a_host_that_is_not_loopback() -> None:
    with pytest.raises(ValueError, match="only allowed for a loopback host"):
        ImapConfig(host="imap.example.test", username="u", password="p", security="plain")


def test_plain_imap_is_allowed_on_loopback() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.8.9.10"):
        assert ImapConfig(host=host, username="u", password="p", security="plain").effective_port == 143


# -- timeouts --------------------------------------------------------------------------------------


def free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class StallingServer:
    """Accepts IMAP connections and then stops talking: after nothing, or after the greeting and the
    CAPABILITY answer (so that the client's next command, LOGIN, is the one left hanging)."""

    def __init__(self, *, greet: bool) -> None:
        self.greet = greet
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.held.append(conn)
            if self.greet:
                conn.sendall(b"* OK ready\r\n")
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    tag = conn.recv(1024).split(b" ", 1)[0]  # "<tag> CAPABILITY"
                    conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[StallingServer]:
    server = StallingServer(greet=False)
    yield server
    server.close()


@pytest.fixture
def stalling_server() -> Iterator[StallingServer]:
    server = StallingServer(greet=True)
    yield server
    server.close()


def test_a_server_that_never_greets_times_out(silent_server: StallingServer) -> None:
    config = ImapConfig(
        host="127.0.0.1", port=silent_server.port, username="u", password="p", security="plain",
        connect_timeout=0.3,
    )

    started = time.monotonic()
    with pytest.raises(SourceError, match=r"connect failed for u at .* no answer within the timeout"):
        ImapSource(config).__enter__()
    assert time.monotonic() - started < 2


def test_a_server_that_stops_answering_times_out(stalling_server: StallingServer) -> None:
    config = ImapConfig(
        host="127.0.0.1", port=stalling_server.port, username="u", password="p", security="plain",
        connect_timeout=2, read_timeout=0.3,
    )

    started = time.monotonic()
    with pytest.raises(SourceError, match=r"login failed for u at .* no answer within the timeout"):
        ImapSource(config).__enter__()
    assert time.monotonic() - started < 2
