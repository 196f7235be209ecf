"""Memory is bounded by configuration, not by the mail: peak RSS and database size of one poll.

    .venv/bin/python benchmarks/memory_bounds.py                  # fifty 86 MB mails + 5 buyer mails
    .venv/bin/python benchmarks/memory_bounds.py --large 14 --mailbot-src ../main   # the code before

A throwaway Dovecot gets `--large` distinct mails of `--size-mb` MB each (a buyer's message with a
large base64 attachment), APPENDed one by one, plus a few ordinary buyer mails between them. Then
`mailbot poll --once` runs with the shipped limits (max_message_bytes 25 MB, max_batch_bytes 50 MB)
and this prints:

* the peak RSS of the mailbot process (ru_maxrss, as `/usr/bin/time -v` reports it), and
* the peak of the whole process tree (mailbot, the fork server and the reading process) sampled
  every 50 ms, as RSS and as PSS (which counts pages shared between the processes once);
* the size of the database afterwards (SQLite file plus its WAL), the outcomes in the ledger and
  whether the large mails are still unread in the mailbox.

Not a test: it writes GBs to the Dovecot spool and takes a few minutes; run it on demand.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from intake import (  # the throughput benchmark's helpers: same servers, config and launcher
    _LAUNCHER,
    PASSWORD,
    REPO,
    SmtpCapture,
    mailbot_command,
    mailbot_env,
    start_dovecot,
    write_config,
)

USER = "memory@bench.test"


def large_mail(n: int, attachment: bytes) -> bytes:
    boundary = f"bound-{n}"
    head = (
        f"From: Factory QA {n} <qa{n}@factory.example>\r\n"
        "To: ta-pm@example.test\r\n"
        f"Subject: Production photos and video for order 1625349876{n:05d}\r\n"
        f"Message-ID: <memory-large-{n}@factory.example>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Dear team, the full video of the production line for order 1625349876{n:05d} is attached.\r\n"
        f"--{boundary}\r\nContent-Type: video/mp4\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="line-{n}.mp4"\r\n\r\n'
    ).encode()
    return head + attachment + f"\r\n--{boundary}--\r\n".encode()


def small_mail(n: int) -> bytes:
    return (
        f"From: Buyer {n} <buyer{n}@shop.example>\r\nTo: ta-pm@example.test\r\n"
        f"Subject: Cancel monitoring, order 1725349876{n:05d}\r\n"
        f"Message-ID: <memory-small-{n}@shop.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Please cancel the production monitoring for my order 1725349876{n:05d}.\r\n"
    ).encode()


def attachment_of(size: int) -> bytes:
    """Base64 lines (76 characters + CRLF) of random bytes, `size` bytes in all."""
    encoded = base64.encodebytes(os.urandom(size * 57 // 78 + 57)).replace(b"\n", b"\r\n")
    return encoded[: size - size % 78]


def load(dovecot: object, count: int, size_mb: float, small: int) -> tuple[int, float]:
    attachment = attachment_of(int(size_mb * 1024 * 1024))
    started = time.perf_counter()
    total = 0
    with dovecot.connect(USER) as client:  # type: ignore[attr-defined]
        between = {count * i // small for i in range(small)} if small else set()
        for n in range(count):
            raw = large_mail(n, attachment)
            total += len(raw)
            client.append("INBOX", raw)
            if n in between:
                client.append("INBOX", small_mail(n))
    return total, time.perf_counter() - started


class TreeSampler:
    """Sums RSS and PSS over the descendants of a process, every `interval` seconds."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root, self.interval = root, interval
        self.peak_rss_kb = self.peak_pss_kb = self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pids = self._tree()
            rss = pss = 0
            for pid in pids:
                rss += _field(f"/proc/{pid}/status", "VmRSS:")
                pss += _field(f"/proc/{pid}/smaps_rollup", "Pss:")
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_processes = max(self.peak_processes, len(pids))

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], list(children.get(self.root, []))  # the launcher itself does not count
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found


def _field(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class Poll:
    rc: int
    wall_s: float
    cpu_s: float
    rss_kb: int
    stderr: str


def run_poll(config: Path, workdir: Path, env: dict[str, str]) -> tuple[Poll, TreeSampler]:
    """`mailbot poll --once` under the throughput benchmark's launcher, its process tree sampled."""
    cmd = [*mailbot_command(), "--config", str(config), "poll", "--once"]
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile(suffix=".json") as usage_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, usage_file.name, *cmd],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        with TreeSampler(proc.pid) as sampler:
            proc.wait()
        usage = json.loads(Path(usage_file.name).read_text())
        err.seek(0)
        return Poll(
            rc=usage["rc"],
            wall_s=usage["wall"],
            cpu_s=usage["user"] + usage["sys"],
            rss_kb=usage["rss_kb"],
            stderr=err.read().decode(errors="replace"),
        ), sampler


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", type=int, default=50, help="how many large mails (default 50)")
    parser.add_argument("--size-mb", type=float, default=86.0, help="size of each large mail in MB")
    parser.add_argument("--small", type=int, default=5, help="ordinary buyer mails among them")
    parser.add_argument("--mailbot-src", default=str(REPO), help="the checkout whose mailbot runs")
    args = parser.parse_args()
    source = Path(args.mailbot_src).resolve()

    dovecot = start_dovecot({USER: PASSWORD})
    smtp = SmtpCapture().start()
    try:
        total, seconds = load(dovecot, args.large, args.size_mb, args.small)
        print(
            f"loaded {args.large} mails of {args.size_mb:g} MB (+{args.small} small): {total / 2**20:.0f} MB "
            f"APPENDed in {seconds:.1f} s"
        )
        with tempfile.TemporaryDirectory(prefix="mailbot-memory-") as tmp:
            workdir = Path(tmp)
            config = write_config(
                workdir,
                imap_host=dovecot.host,
                imap_port=dovecot.imap_port,
                username=USER,
                smtp_host=smtp.host,
                smtp_port=smtp.port,
                source=source,
            )
            env = mailbot_env(PASSWORD, source)
            subprocess.run(
                [*mailbot_command(), "--config", str(config), "db", "upgrade"],
                env=env,
                cwd=workdir,
                check=True,
                capture_output=True,
            )
            timing, sampler = run_poll(config, workdir, env)
            db = workdir / "var" / "mailbot.db"
            db_bytes = sum(p.stat().st_size for p in db.parent.glob("mailbot.db*"))
            with sqlite3.connect(db) as conn:
                outcomes = dict(
                    conn.execute("SELECT outcome, count(*) FROM mail GROUP BY outcome").fetchall()
                )
                reasons = [
                    r for (r,) in conn.execute("SELECT reason FROM mail WHERE outcome='quarantined' LIMIT 1")
                ]
        with dovecot.connect(USER) as client:
            client.select_folder("INBOX", readonly=True)
            untouched = len(client.search(["UNSEEN", "NOT", "KEYWORD", "$MailbotProcessed"]))
        print(
            f"mailbot ({source}): poll --once exit {timing.rc} in {timing.wall_s:.1f} s, "
            f"CPU {timing.cpu_s:.1f} s"
        )
        print(f"  peak RSS of the mailbot process (ru_maxrss): {timing.rss_kb / 1024:.0f} MB")
        print(
            f"  peak of the process tree ({sampler.peak_processes} processes, sampled every 50 ms): "
            f"RSS {sampler.peak_rss_kb / 1024:.0f} MB, PSS {sampler.peak_pss_kb / 1024:.0f} MB"
        )
        print(f"  database afterwards: {db_bytes / 2**20:.1f} MB; ledger {json.dumps(outcomes)}")
        if reasons:
            print(f"  e.g. {reasons[0]}")
        print(f"  left unread and unflagged in the mailbox: {untouched}")
        if timing.rc != 0:
            print(timing.stderr[-2000:], file=sys.stderr)
    finally:
        smtp.stop()
        dovecot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
