"""The worker (`mailbot run`) on an XOAUTH2 mailbox: its IDLE connection logs in with the token too,
a new mail is answered through IDLE, and /metrics shows how long the token has left."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fixtures.servers import DovecotServer, SmtpCapture, free_port
from fixtures.token_server import TokenServer

from .test_refresh_alert import EML, USERS, _installation

pytestmark = pytest.mark.imap


def _metric(port: int, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name and (match.group(2) or "") == wanted:
            return float(match.group(3))
    return None


def _wait(worker: subprocess.Popen[str], what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"the worker exited ({worker.returncode}) waiting for {what}"
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass  # the endpoint is not up yet
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_worker_idles_and_answers_on_an_xoauth2_mailbox(
    tmp_path: Path, dovecot_oauth: DovecotServer, smtp_server: SmtpCapture, token_server: TokenServer
) -> None:
    token_server.add_app("mailbot-public", "pm-app-secret", USERS["pm"])
    env = _installation(tmp_path, dovecot_oauth, smtp_server, token_server, "unused")
    port = free_port()
    text = env.config.read_text().replace('flow = "refresh_token"', 'flow = "client_credentials"')
    text = text.replace('refresh_token_secret = "pm-refresh-token"', 'client_secret_secret = "pm-app"')
    text = text.replace("poll_interval_seconds = 5", "poll_interval_seconds = 3600")  # only IDLE can answer
    text += f'\n[observability]\nlisten = "127.0.0.1:{port}"\n'
    env.config.write_text(text)
    (tmp_path / "secrets" / "pm-app").write_text("pm-app-secret")
    worker = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(env.config), "run"],
        env=env.env,
        cwd=env.config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(worker, "IDLE on pm", lambda: _metric(port, "mailbot_idle_connected", mailbox="pm") == 1.0)
        env.append("pm", str(EML / "pm-question.eml"))
        [reply] = smtp_server.wait_for(1, timeout=30)
        assert reply.rcpt_tos == ["li.wei@sunrise-import.example"]
        left = _metric(port, "mailbot_oauth_token_expiry_seconds", account="pm")
        assert left is not None and 3000 < left <= 3600
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
