"""IMAP IDLE and the kept polling session, against the real Dovecot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fixtures.servers import DovecotServer

from mailbot.adapters.imap import IdleTiming, ImapIdler, ImapSource

pytestmark = pytest.mark.imap

MAIL = b"From: buyer@shop.example\r\nTo: ta-pm@support.example.test\r\nSubject: hello\r\n\r\nhi\r\n"
FAST = IdleTiming(check_seconds=0.2, first_backoff_seconds=0.1, max_backoff_seconds=0.5)


class Listener:
    """An ImapIdler on a thread, counting its wake-ups."""

    def __init__(self, idler_config: object, timing: IdleTiming = FAST) -> None:
        self.wakeups = 0
        self.woken = threading.Condition()
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.result: list[bool] = []
        self.idler = ImapIdler(
            idler_config,  # type: ignore[arg-type]
            on_new_mail=self._wake,
            stop=self.stop,
            timing=timing,
            on_connected=lambda up: self.connected.set() if up else self.connected.clear(),
        )
        self.thread = threading.Thread(target=lambda: self.result.append(self.idler.run()), daemon=True)

    def _wake(self) -> None:
        with self.woken:
            self.wakeups += 1
            self.woken.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> None:
        with self.woken:
            assert self.woken.wait_for(lambda: self.wakeups >= count, timeout), self.wakeups


@contextmanager
def listening(dovecot: DovecotServer, user: str, timing: IdleTiming = FAST) -> Iterator[Listener]:
    listener = Listener(dovecot.imap_config(user), timing)
    listener.thread.start()
    try:
        assert listener.connected.wait(30)
        listener.wait_for(1)  # the catch-up wake-up every (re)connection makes
        yield listener
    finally:
        listener.stop.set()
        listener.thread.join(10)
    assert not listener.thread.is_alive(), "the IDLE thread did not stop"


def test_a_new_mail_wakes_the_listener(dovecot: DovecotServer, imap_user: str) -> None:
    with listening(dovecot, imap_user) as listener:
        dovecot.append(imap_user, MAIL)
        listener.wait_for(2)


def test_idle_is_renewed_and_still_hears_new_mail_afterwards(dovecot: DovecotServer, imap_user: str) -> None:
    timing = IdleTiming(renew_seconds=0.3, check_seconds=0.1, first_backoff_seconds=0.1)
    with listening(dovecot, imap_user, timing) as listener:
        deadline = time.monotonic() + 30
        while listener.idler.idles_started < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.idler.idles_started >= 4  # renewed three times on the same connection
        assert listener.wakeups == 1 and listener.connected.is_set()
        dovecot.append(imap_user, MAIL)
        listener.wait_for(2)


def test_a_kicked_connection_is_reopened_and_catches_up(dovecot: DovecotServer, imap_user: str) -> None:
    with listening(dovecot, imap_user) as listener:
        dovecot.doveadm("kick", imap_user)
        listener.wait_for(2)  # the wake-up that follows the reconnection
        dovecot.append(imap_user, MAIL)
        listener.wait_for(3)


def test_stop_ends_the_listener_and_run_reports_idle_was_available(
    dovecot: DovecotServer, imap_user: str
) -> None:
    with listening(dovecot, imap_user) as listener:
        pass
    assert listener.result == [True]
    assert not listener.connected.is_set()


def test_a_kept_session_is_reused_by_the_next_poll_and_reopened_after_a_drop(
    dovecot: DovecotServer, imap_user: str
) -> None:
    source = ImapSource(dovecot.imap_config(imap_user), keep_open=True)
    try:
        with source:
            first = source._conn.client
            assert source.new_uids(0) == []
        with source:
            assert source._conn.client is first
        dovecot.doveadm("kick", imap_user)
        uid = dovecot.append(imap_user, MAIL)
        with source:
            assert source._conn.client is not first
            assert source.new_uids(0) == [uid]
    finally:
        source.close()
    assert source._conn.client is None


def test_a_poll_that_failed_does_not_keep_its_session(dovecot: DovecotServer, imap_user: str) -> None:
    source = ImapSource(dovecot.imap_config(imap_user), keep_open=True)
    with pytest.raises(RuntimeError), source:
        raise RuntimeError("a poll failed")
    assert source._conn.client is None
