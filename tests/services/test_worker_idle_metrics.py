"""A watchable worker: IMAP IDLE answers at once, and /metrics, /healthz, /readyz tell how it goes.

Every test runs `mailbot run` as a child process against a real Dovecot and aiosmtpd, with the
scheduled poll an hour away, so a reply that arrives came through IDLE. Tests wait on definite
events (a reply captured, an endpoint's answer changing) with generous timeouts; speed is measured
in benchmarks/latency.py, not here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from fixtures.intake import REPO, Env, write_config
from fixtures.servers import DovecotServer, SmtpCapture, free_port, start_dovecot

pytestmark = pytest.mark.imap

EML = REPO / "tests" / "eml" / "observe"
PM, INSPECTION = "ta-pm@example.test", "ta-inspection@example.test"


def configure(env: Env, port: int, *, poll_seconds: int = 3600) -> None:
    """The poll an hour away (only IDLE can answer quickly), and the endpoints on loopback."""
    text = env.config.read_text(encoding="utf-8")
    text = text.replace("poll_interval_seconds = 5", f"poll_interval_seconds = {poll_seconds}")
    text += f'\n[observability]\nlisten = "127.0.0.1:{port}"\n\n[logging]\nformat = "json"\n'
    env.config.write_text(text, encoding="utf-8")


class Running:
    """`mailbot run` as a child process, with its endpoints."""

    def __init__(self, env: Env, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(env.config), "run"],
            env=env.env, cwd=env.config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.log = ""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def metric(self, name: str, **labels: str) -> float | None:
        _status, text = self.get("/metrics")
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
            if match and match.group(1) == name and (match.group(2) or "") == wanted:
                return float(match.group(3))
        return None

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited ({self.proc.returncode}) waiting for {what}")
            try:
                if check():
                    return
            except OSError:
                pass  # the endpoint is not up yet
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> int:
        """SIGTERM, then the exit status; the log is kept for the assertions."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _out, self.log = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, self.log = self.proc.communicate()
        return self.proc.returncode


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    """A Dovecot of this test's own, because the test restarts it or changes a password."""
    server = start_dovecot()
    yield server
    server.stop()


def own_env(server: DovecotServer, smtp: SmtpCapture, tmp_path: Path) -> Env:
    users = {"pm": PM, "inspection": INSPECTION}
    config = write_config(tmp_path, server, smtp, f"sqlite:///{tmp_path / 'mailbot.db'}", users)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_SECRET_PM_IMAP"] = server.password(PM)
    env["MAILBOT_SECRET_INSPECTION_IMAP"] = server.password(INSPECTION)
    env["PYTHONPATH"] = str(REPO)
    return Env(dovecot=server, smtp=smtp, config=config, users=users, env=env)


def restart(server: DovecotServer) -> None:
    """Stop the Dovecot master and start it again on the same ports and mail store."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(10)
    with (server.root / "log" / "stderr.log").open("ab") as stderr:
        server.proc = subprocess.Popen(
            [server.binary, "-F", "-c", str(server.conf_path)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
        )
    server._wait_for_greeting(10)


def buyer_mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Buyer {n} <buyer-{n}@shop{n}.example>"
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = f"Cancel the service for order {372615498770000 + n}"
    message["Message-ID"] = f"<observe-{n}@shop{n}.example>"
    message.set_content(f"Hello, please cancel the monitoring for order {372615498770000 + n}. Thanks.")
    return message.as_bytes()


def idle_up(worker: Running, mailbox: str) -> Callable[[], bool]:
    return lambda: worker.metric("mailbot_idle_connected", mailbox=mailbox) == 1.0


def test_a_new_mail_is_answered_through_idle_while_the_scheduled_poll_is_an_hour_away(env: Env) -> None:
    port = free_port()
    configure(env, port)
    worker = Running(env, port)
    try:
        worker.wait_until("IDLE on pm", idle_up(worker, "pm"))
        worker.wait_until("the first polls", lambda: worker.get("/readyz")[0] == 200)
        env.dovecot.append(env.users["pm"], (EML / "cancel-pm.eml").read_bytes())
        [reply] = env.smtp.wait_for(1, timeout=30)
        assert reply.rcpt_tos == ["observe.buyer@shop.example"]
        assert (worker.metric("mailbot_idle_wakeups_total", mailbox="pm") or 0) >= 1
        assert worker.metric("mailbot_polls_total", mailbox="pm", result="ok") is not None
    finally:
        assert worker.stop() == 0, worker.log
    assert "worker stopped" in worker.log


def test_idle_reconnects_after_dovecot_restarts_and_answers_the_next_mail(
    own_dovecot: DovecotServer, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    env = own_env(own_dovecot, smtp_server, tmp_path)
    port = free_port()
    configure(env, port)
    before = len(smtp_server.messages)
    worker = Running(env, port)
    try:
        worker.wait_until("IDLE on pm", idle_up(worker, "pm"))
        restart(own_dovecot)
        worker.wait_until("IDLE down", lambda: not idle_up(worker, "pm")(), timeout=30)
        worker.wait_until("IDLE up again", idle_up(worker, "pm"), timeout=60)
        own_dovecot.append(PM, buyer_mail(1))
        smtp_server.wait_for(before + 1, timeout=30)
    finally:
        assert worker.stop() == 0, worker.log
    assert "reconnecting in" in worker.log


def test_endpoints_answer_and_change_as_mail_flows_and_as_a_mailbox_fails(
    own_dovecot: DovecotServer, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    env = own_env(own_dovecot, smtp_server, tmp_path)
    port = free_port()
    configure(env, port, poll_seconds=5)
    before = len(smtp_server.messages)
    worker = Running(env, port)
    try:
        worker.wait_until("/healthz", lambda: worker.get("/healthz")[0] == 200)
        worker.wait_until("/readyz ready", lambda: worker.get("/readyz") == (200, "ready\n"))
        assert worker.metric("mailbot_mailbox_up", mailbox="inspection") == 1.0
        assert worker.metric("mailbot_ruleset_info", version=_any_version(worker)) == 1.0
        assert worker.metric("mailbot_outbox_replies", state="sent") == 0.0

        own_dovecot.append(PM, buyer_mail(2))
        smtp_server.wait_for(before + 1, timeout=30)
        worker.wait_until(
            "the reply counted", lambda: worker.metric("mailbot_outbox_replies", state="sent") == 1.0
        )
        assert worker.metric("mailbot_mail_total", mailbox="pm", outcome="routed") == 1.0
        assert worker.metric("mailbot_arrival_to_reply_seconds_count", mailbox="pm") == 1.0
        assert worker.metric("mailbot_decision_seconds_count", mailbox="pm") == 1.0
        assert (worker.metric("mailbot_last_successful_poll_timestamp_seconds", mailbox="pm") or 0) > 0

        passwd = own_dovecot.root / "etc" / "passwd"
        passwd.write_text(passwd.read_text().replace("insp-secret", "changed-by-the-admin"))
        own_dovecot.doveadm("kick", INSPECTION)  # the admin ends the sessions still logged in
        worker.wait_until("/readyz failing", lambda: worker.get("/readyz")[0] == 503)
        _status, body = worker.get("/readyz")
        assert "mailbox inspection:" in body and "mailbox pm" not in body, body
        assert worker.metric("mailbot_mailbox_up", mailbox="inspection") == 0.0
        assert worker.metric("mailbot_mailbox_up", mailbox="pm") == 1.0
        assert worker.metric("mailbot_polls_total", mailbox="inspection", result="failed") is not None
        assert worker.get("/healthz")[0] == 200  # alive, though not ready
    finally:
        assert worker.stop() == 0, worker.log
    assert '"mailbox": "inspection"' in worker.log  # JSON lines name the mailbox they are about


def _any_version(worker: Running) -> str:
    _status, text = worker.get("/metrics")
    match = re.search(r'mailbot_ruleset_info\{version="([0-9a-f]+)"\}', text)
    assert match, text
    return match.group(1)
