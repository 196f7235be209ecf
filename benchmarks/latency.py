"""How long a buyer waits: APPEND returning at the IMAP server -> the reply arriving at the SMTP server.

Not a test: it prints numbers. A real Dovecot, a real aiosmtpd server, SQLite, and `mailbot run` as
a child process, as in production (TLS to Dovecot, the outbox drained right after each poll).

    python benchmarks/latency.py                 # 50 mails with IDLE, 8 mails with a 60 s poll
    python benchmarks/latency.py --idle-mails 20 --poll-mails 4 --poll-interval 30

* IDLE (mailbox pm, `idle = true`, scheduled poll an hour away): one mail at a time, each timed from
  the APPEND's tagged OK to the reply's DATA reaching the SMTP server. Goal: p95 <= 1.0 s.
* Poll (mailbox pm, `idle = false`, poll every --poll-interval seconds): mails appended at random
  moments over two intervals, all timed at once (fewer mails than with IDLE: each costs a poll
  interval of wall time).
* Empty poll: mailbox inspection (`idle = false`, polled every 5 s, never gets mail) during the IDLE
  run and --quiet-seconds after it; the worker's own `mailbot_poll_seconds` for it (lease, SELECT on
  the kept session, SEARCH, record the poll), read from /metrics, the first poll (which logs in)
  left out. Goal: <= 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers are the benchmark's servers too
sys.path.insert(0, str(REPO))

from fixtures.intake import write_config  # noqa: E402
from fixtures.servers import DovecotServer, SmtpCapture, free_port, start_dovecot  # noqa: E402

PM, INSPECTION = "ta-pm@example.test", "ta-inspection@example.test"


def buyer_mail(run: str, n: int) -> tuple[str, bytes]:
    message_id = f"<latency-{run}-{n}@shop{n}.example>"
    message = EmailMessage()
    message["From"] = f"Buyer {n} <buyer-{run}-{n}@shop{n}.example>"  # one sender each: no rate limit
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = f"Cancel the service for order {372615498780000 + n}"
    message["Message-ID"] = message_id
    message.set_content(f"Hello, please cancel the monitoring for order {372615498780000 + n}. Thanks.")
    return message_id, message.as_bytes()


class Arrivals:
    """Stamps each reply with the moment it reached the SMTP server, keyed by the mail it answers."""

    def __init__(self, smtp: SmtpCapture) -> None:
        self.smtp = smtp
        self.seen: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        count = len(self.smtp.messages)
        while not self._done.is_set():
            try:
                messages = self.smtp.wait_for(count + 1, timeout=0.2)
            except TimeoutError:
                continue
            now = time.perf_counter()
            for item in messages[count:]:
                answered = message_from_bytes(item.data).get("In-Reply-To", "").strip()
                self.seen.setdefault(answered, now)
            count = len(messages)

    def wait(self, message_id: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while message_id not in self.seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {message_id} within {timeout} s")
            time.sleep(0.002)
        return self.seen[message_id]

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def configure(
    directory: Path, dovecot: DovecotServer, smtp: SmtpCapture, *, idle: bool, poll: int
) -> tuple[Path, int]:
    users = {"pm": PM, "inspection": INSPECTION}
    config = write_config(directory, dovecot, smtp, f"sqlite:///{directory / 'mailbot.db'}", users)
    text = config.read_text(encoding="utf-8")
    pm, inspection = text.split("[mailboxes.inspection]")
    pm = pm.replace("poll_interval_seconds = 5", f"poll_interval_seconds = {poll}")
    pm = pm.replace('processed_action = "flag"', f'processed_action = "flag"\nidle = {str(idle).lower()}')
    inspection = inspection.replace('processed_action = "flag"', 'processed_action = "flag"\nidle = false')
    port = free_port()
    text = pm + "[mailboxes.inspection]" + inspection + f'\n[observability]\nlisten = "127.0.0.1:{port}"\n'
    text = text.replace('log_level = "INFO"', 'log_level = "WARNING"')
    config.write_text(text, encoding="utf-8")
    return config, port


def start_worker(config: Path, dovecot: DovecotServer) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_SECRET_PM_IMAP"] = dovecot.password(PM)
    env["MAILBOT_SECRET_INSPECTION_IMAP"] = dovecot.password(INSPECTION)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), "run"], env=env, cwd=config.parent
    )


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def metric(port: int, pattern: str) -> float | None:
    match = re.search(pattern + r" (\S+)", metrics(port))
    return float(match.group(1)) if match else None


def wait_ready(port: int, idle: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            polled = metric(port, r'mailbot_polls_total\{mailbox="pm",result="ok"\}')
            up = metric(port, r'mailbot_idle_connected\{mailbox="pm"\}') if idle else 1.0
            if polled and up == 1.0:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the worker did not become ready")


def poll_totals(port: int, mailbox: str) -> tuple[float, float]:
    """(sum of seconds, count) of the worker's own `mailbot_poll_seconds` for `mailbox`."""
    text = metrics(port)
    total = re.search(rf'mailbot_poll_seconds_sum\{{mailbox="{mailbox}"\}} (\S+)', text)
    count = re.search(rf'mailbot_poll_seconds_count\{{mailbox="{mailbox}"\}} (\S+)', text)
    return (float(total.group(1)) if total else 0.0), (float(count.group(1)) if count else 0.0)


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def run_idle(
    dovecot: DovecotServer, smtp: SmtpCapture, mails: int, quiet_seconds: float
) -> tuple[list[float], float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        config, port = configure(Path(tmp), dovecot, smtp, idle=True, poll=3600)
        worker = start_worker(config, dovecot)
        arrivals = Arrivals(smtp)
        try:
            wait_ready(port, idle=True)
            first_sum, first_count = poll_totals(port, "inspection")  # the first poll logs in: left out
            times = []
            for n in range(mails):
                message_id, raw = buyer_mail("idle", n)
                dovecot.append(PM, raw)
                appended = time.perf_counter()
                times.append(arrivals.wait(message_id, timeout=120) - appended)
            if quiet_seconds:
                time.sleep(quiet_seconds)  # no mail at all: the empty polls alone
            total, count = poll_totals(port, "inspection")
            polls = int(count - first_count)
            empty = (total - first_sum) / max(1, polls)
        finally:
            arrivals.stop()
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    return times, empty, polls


def run_poll(dovecot: DovecotServer, smtp: SmtpCapture, mails: int, interval: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        config, port = configure(Path(tmp), dovecot, smtp, idle=False, poll=interval)
        worker = start_worker(config, dovecot)
        arrivals = Arrivals(smtp)
        try:
            wait_ready(port, idle=False)
            rng = random.Random(7)
            offsets = sorted(rng.uniform(0, 2 * interval) for _ in range(mails))
            start = time.perf_counter()
            appended: dict[str, float] = {}
            for n, offset in enumerate(offsets):
                time.sleep(max(0.0, start + offset - time.perf_counter()))
                message_id, raw = buyer_mail("poll", n)
                dovecot.append(PM, raw)
                appended[message_id] = time.perf_counter()
            return [arrivals.wait(mid, timeout=3 * interval) - at for mid, at in appended.items()]
        finally:
            arrivals.stop()
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-mails", type=int, default=50)
    parser.add_argument("--poll-mails", type=int, default=8)
    parser.add_argument("--poll-interval", type=int, default=60)
    parser.add_argument(
        "--quiet-seconds", type=float, default=30, help="no mail, only empty polls, after the IDLE mails"
    )
    args = parser.parse_args()
    dovecot = start_dovecot()
    smtp = SmtpCapture().start()
    try:
        times, empty, polls = run_idle(dovecot, smtp, args.idle_mails, args.quiet_seconds)
        p50, p95 = percentiles(times)
        print(f"IDLE, {len(times)} mails: p50 {p50:.3f} s, p95 {p95:.3f} s, max {max(times):.3f} s")
        print(f"empty poll inside the running worker: {empty * 1000:.1f} ms mean over {polls} polls")
        if args.poll_mails:
            times = run_poll(dovecot, smtp, args.poll_mails, args.poll_interval)
            p50, p95 = percentiles(times)
            print(
                f"poll every {args.poll_interval} s, {len(times)} mails: p50 {p50:.3f} s, "
                f"p95 {p95:.3f} s, max {max(times):.3f} s"
            )
    finally:
        smtp.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()
