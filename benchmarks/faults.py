"""Exactly once under faults, against real servers: prints one table (run on demand, not a test).

    .venv/bin/python benchmarks/faults.py                 # every scenario, a few minutes
    .venv/bin/python benchmarks/faults.py --only kill --mails 500 --kills 25

Scenarios (each on a throwaway Dovecot account pair, an aiosmtpd capture server and a fresh database):

* kill storm (SQLite, PostgreSQL): a backlog of buyer mails in both mailboxes; `mailbot poll --once`
  is started again and again and SIGKILLed at a random moment, `--kills` times; then it runs to the end.
* two workers (PostgreSQL): two `mailbot run` processes over one backlog, stopped with SIGTERM once every
  reply has arrived; their logs are searched for ERROR lines and tracebacks.
* cross-posted (PostgreSQL): every mail delivered to both mailboxes, one worker whose two poll jobs run
  at the same moment.
* lost 250 / late 250 (SQLite, PostgreSQL): the outbox drains against a server that drops the
  connection after the final "." or answers after the client stopped waiting, then drains again.
* bots: auto-responders that answer every reply — with RFC 3834 headers, without, and without but with
  a Reply-To naming a victim; `poll --once` runs round after round.

Figures: lost (a mail with no ledger row or left unacknowledged; a reply neither sent, pending,
failed nor uncertain), duplicate cases (more than one case per buyer mail), duplicate replies (a
Message-ID or a recipient captured twice), false recovery events (`reply_recovered` for a reply
the server never received, or any at all without a crash), uncertain (and how many of those were
never handed over: must be 0), max replies per bot (limit: replies_per_sender_per_hour).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers are the benchmark's servers too
sys.path.insert(0, str(REPO))

from fixtures.intake import write_config  # noqa: E402
from fixtures.servers import SPARE_USERS, DovecotServer, PostgresServer, SmtpCapture, start_dovecot  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from mailbot.store.db import make_engine, session_scope, upgrade  # noqa: E402
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem  # noqa: E402

REPLY_LIMIT = 5  # replies_per_sender_per_hour in the config below (the default)
#: The fault-injection points of the services (MAILBOT_CRASH_AT): the process SIGKILLs itself there.
CRASH_POINTS = ("after-ledger-commit", "after-claim", "after-handover-mark", "after-smtp-accept")


@dataclass
class Row:
    scenario: str
    database: str
    mails: int = 0
    kills: int = 0
    lost: int = 0
    duplicate_cases: int = 0
    duplicate_replies: int = 0
    false_recoveries: int = 0
    uncertain: int = 0
    uncertain_not_handed_over: int = 0
    max_per_bot: str = "-"
    errors_in_logs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- set-up ----------------------------------------------------------------------------------------------


@dataclass
class Stage:
    """One installation: two mailboxes on Dovecot, an SMTP capture server, a database, a config file."""

    dovecot: DovecotServer
    smtp: SmtpCapture
    url: str
    users: dict[str, str]
    config: Path
    env: dict[str, str]

    def mailbot(
        self, *args: str, crash_at: str | None = None, log: IO[str] | None = None
    ) -> subprocess.Popen[str]:
        """`log`: a file for stderr. A worker that runs until stopped must have one: an unread pipe
        fills at 64 KB of log lines, its writes then block, its heartbeat goes stale and the other
        worker takes over its replies in flight."""
        env = {**self.env, "MAILBOT_CRASH_AT": crash_at} if crash_at else self.env
        return subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(self.config), *args],
            env=env,
            cwd=self.config.parent,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.PIPE,
            text=True,
        )

    def poll_once(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        process = self.mailbot("poll", "--once")
        out, err = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


_pairs = iter(range(10_000))


@contextmanager
def stage(dovecot: DovecotServer, kind: str, workdir: Path) -> Iterator[Stage]:
    n = next(_pairs)
    users = {
        "pm": SPARE_USERS[(2 * n) % len(SPARE_USERS)],
        "inspection": SPARE_USERS[(2 * n + 1) % len(SPARE_USERS)],
    }
    for user in users.values():
        dovecot.clean(user)
    directory = workdir / f"stage{n}"
    directory.mkdir()
    postgres = PostgresServer() if kind == "postgres" else None
    url = postgres.create_database() if postgres else f"sqlite:///{directory / 'mailbot.db'}"
    with SmtpCapture() as smtp:
        config = write_config(directory, dovecot, smtp, url, users)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
        env["MAILBOT_SECRET_PM_IMAP"] = dovecot.password(users["pm"])
        env["MAILBOT_SECRET_INSPECTION_IMAP"] = dovecot.password(users["inspection"])
        env["PYTHONPATH"] = str(REPO)
        upgrade(url)
        try:
            yield Stage(dovecot, smtp, url, users, config, env)
        finally:
            if postgres is not None:
                postgres.drop_database(url)


def buyer_mail(tag: str, n: int, to: str = "ta-pm@support.example.test", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Buyer {n} <buyer-{tag}-{n}@shop{n % 97}.example>"
    message["To"] = to
    message["Subject"] = f"Cancel the service for order {372615498760000 + n}"
    message["Message-ID"] = f"<{tag}-{n}@shop{n % 97}.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"Hello, please cancel the service for order {372615498760000 + n}. Thank you.")
    return message.as_bytes()


# -- figures ---------------------------------------------------------------------------------------------


def measure(row: Row, st: Stage, message_ids: list[str], *, crashes: bool) -> None:
    captured = [c.message()["Message-ID"] for c in st.smtp.messages]
    recipients = [c.rcpt_tos[0] for c in st.smtp.messages]
    engine = make_engine(st.url)
    try:
        with Session(engine) as session:
            ledger = Counter(m.strip("<>") for m in session.exec(select(MailRecord.message_id)) if m)
            routed_ids = [
                m for m in session.exec(select(MailRecord.message_id).where(MailRecord.outcome == "routed"))
            ]
            unacked = len(session.exec(select(MailRecord.id).where(col(MailRecord.acked_at).is_(None))).all())
            cases = session.exec(select(Case.buyer)).all()
            outbox = session.exec(select(OutboxItem)).all()
            recovered = session.exec(
                select(CaseEvent.summary).where(CaseEvent.kind == "reply_recovered")
            ).all()
    finally:
        engine.dispose()
    row.lost = sum(1 for m in message_ids if m.strip("<>") not in ledger) + unacked
    row.lost += sum(1 for item in outbox if item.status not in {"sent", "pending", "failed", "uncertain"})
    row.duplicate_cases = sum(n - 1 for n in Counter(cases).values() if n > 1)
    row.duplicate_cases += sum(n - 1 for n in Counter(routed_ids).values() if n > 1)
    row.duplicate_replies = sum(n - 1 for n in Counter(captured).values() if n > 1)
    row.duplicate_replies = max(
        row.duplicate_replies, sum(n - 1 for n in Counter(recipients).values() if n > 1)
    )
    delivered = {str(m).strip("<> ") for m in captured}
    if crashes:
        named = [re.search(r"reply <?([^<>\s]+)>? was", summary) for summary in recovered]
        row.false_recoveries = sum(1 for m in named if m is None or m.group(1) not in delivered)
        row.notes.append(f"{len(recovered)} replies found in Sent after a kill (not resent)")
    else:
        row.false_recoveries = len(recovered)
    row.uncertain = sum(1 for item in outbox if item.status == "uncertain")
    row.uncertain_not_handed_over = sum(
        1 for item in outbox if item.status == "uncertain" and item.handed_over_at is None
    )
    if row.uncertain:
        reached = sum(1 for i in outbox if i.status == "uncertain" and i.message_id.strip("<> ") in delivered)
        row.notes.append(f"{reached} of {row.uncertain} uncertain replies had reached the server")
    stuck = sum(1 for item in outbox if item.status in {"pending", "sending"})
    if stuck:
        row.notes.append(f"{stuck} replies still pending")


def log_problems(text: str) -> int:
    return sum(1 for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback"))


# -- scenarios -------------------------------------------------------------------------------------------


def kill_storm(
    dovecot: DovecotServer, kind: str, workdir: Path, mails: int, kills: int, rng: random.Random
) -> Row:
    row = Row("kill storm", kind, mails=mails)
    started = time.monotonic()
    with stage(dovecot, kind, workdir) as st:
        # The backlog arrives in chunks, one before each run, so every run has mail to read and replies
        # to send when it is killed (a backlog loaded at once is gone after the first few runs).
        ids: list[str] = []
        chunks: list[tuple[str, list[bytes]]] = []
        per_box = mails // 2
        step = max(1, per_box // kills)
        for box, address in (("pm", "ta-pm"), ("inspection", "ta-inspection")):
            raws = [
                buyer_mail(f"storm-{box}", n, to=f"{address}@support.example.test") for n in range(per_box)
            ]
            ids += [f"<storm-{box}-{n}@shop{n % 97}.example>" for n in range(per_box)]
            chunks += [(box, raws[i : i + step]) for i in range(0, per_box, step)]
        rng.shuffle(chunks)
        logs = ""
        kinds: Counter[str] = Counter()
        while row.kills < kills:
            if chunks:
                box, raws = chunks.pop()
                dovecot.append_many(st.users[box], raws)
            # Half the kills at a random moment, half at a random one of the named crash points (the
            # timed ones mostly land in the intake, which comes first; the named ones reach the sends).
            point = rng.choice(CRASH_POINTS) if rng.random() < 0.5 else None
            with tempfile.TemporaryFile("w+") as log:  # a pipe read only after the kill could fill
                process = st.mailbot("poll", "--once", crash_at=point, log=log)
                try:
                    process.wait(timeout=rng.uniform(1.0, 4.0) if point is None else 300)
                    if process.returncode == -signal.SIGKILL:
                        row.kills += 1
                        kinds[point or "timed"] += 1
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
                    row.kills += 1
                    kinds["timed"] += 1
                process.communicate()
                log.seek(0)
                logs += log.read()
        row.notes.append("kills: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
        for box, raws in chunks:  # what is left of the backlog, then run to the end
            dovecot.append_many(st.users[box], raws)
        for _ in range(5):
            done = st.poll_once()
            logs += done.stderr
            if "0 fetched" in done.stdout and "outbox: 0 sent" in done.stdout:
                break
        measure(row, st, ids, crashes=True)
        row.errors_in_logs = log_problems(logs)
    row.seconds = time.monotonic() - started
    return row


def run_workers(st: Stage, count: int, expected: int, timeout: float = 300) -> str:
    with ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(count)]
        workers = [st.mailbot("run", log=file) for file in files]
        try:
            st.smtp.wait_for(expected, timeout=timeout)
            # Every reply has arrived; wait until every mail is acknowledged before stopping.
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.communicate(timeout=120)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
        for file in files:
            file.seek(0)
        return "".join(file.read() for file in files)


def two_workers(dovecot: DovecotServer, workdir: Path, mails: int) -> Row:
    row = Row("two workers", "postgres", mails=mails)
    started = time.monotonic()
    with stage(dovecot, "postgres", workdir) as st:
        ids: list[str] = []
        for box, address in (("pm", "ta-pm"), ("inspection", "ta-inspection")):
            raws = [
                buyer_mail(f"two-{box}", n, to=f"{address}@support.example.test") for n in range(mails // 2)
            ]
            ids += [f"<two-{box}-{n}@shop{n % 97}.example>" for n in range(mails // 2)]
            dovecot.append_many(st.users[box], raws)
        logs = run_workers(st, 2, expected=len(ids))
        measure(row, st, ids, crashes=False)
        row.errors_in_logs = log_problems(logs)
    row.seconds = time.monotonic() - started
    return row


def cross_posted(dovecot: DovecotServer, workdir: Path, mails: int) -> Row:
    row = Row("cross-posted", "postgres", mails=mails)
    started = time.monotonic()
    with stage(dovecot, "postgres", workdir) as st:
        to = "ta-pm@support.example.test, ta-inspection@support.example.test"
        raws = [buyer_mail("cross", n, to=to) for n in range(mails)]
        ids = [f"<cross-{n}@shop{n % 97}.example>" for n in range(mails)]
        for box in ("pm", "inspection"):
            dovecot.append_many(st.users[box], raws)
        logs = run_workers(st, 1, expected=mails)
        measure(row, st, ids, crashes=False)
        row.errors_in_logs = log_problems(logs)
    row.seconds = time.monotonic() - started
    return row


def smtp_faults(dovecot: DovecotServer, kind: str, workdir: Path, fault: str, replies: int) -> Row:
    """Drains in-process against a server that loses (or delays past the wait) every second answer."""
    from mailbot.adapters.maildir import FolderSentCopies
    from mailbot.adapters.smtp import SmtpConfig, SmtpTransport
    from mailbot.services.outbox import OutboxPolicy, drain

    name = "lost 250" if fault == "drop-after-data" else "late 250"
    row = Row(name, kind, mails=replies)
    started = time.monotonic()
    with stage(dovecot, kind, workdir) as st:
        engine = make_engine(st.url)
        with session_scope(engine) as session:
            for n in range(replies):
                raw = buyer_mail("reply", n, to=f"buyer{n}@shop.example")
                session.add(
                    OutboxItem(
                        mailbox="pm",
                        message_id=f"<reply-{n}@shop{n % 97}.example>",
                        mail_from="ta-pm@support.example.test",
                        rcpt_to=f"buyer{n}@shop.example",
                        template="t",
                        language="en",
                        raw=raw,
                    )
                )
        st.smtp.fault(fault if fault == "drop-after-data" else "delay-250:1.5", times=replies // 2)
        config = SmtpConfig(
            host=st.smtp.host, port=st.smtp.port, security="plain", timeout=0.5, final_reply_timeout=0.5
        )
        for _ in range(3):
            drain(
                engine,
                lambda: SmtpTransport(config),
                lambda box: FolderSentCopies(workdir / f"sent-{kind}-{fault}"),
                lambda: datetime.now(UTC),
                OutboxPolicy(backoff_seconds=0),
            )
        engine.dispose()
        ids = [f"<reply-{n}@shop{n % 97}.example>" for n in range(replies)]
        captured = Counter(c.message()["Message-ID"] for c in st.smtp.messages)
        row.duplicate_replies = sum(n - 1 for n in captured.values() if n > 1)
        engine = make_engine(st.url)
        with Session(engine) as session:
            outbox = session.exec(select(OutboxItem)).all()
        engine.dispose()
        row.lost = sum(1 for m in ids if m not in captured)
        row.uncertain = sum(1 for item in outbox if item.status == "uncertain")
        row.uncertain_not_handed_over = sum(
            1 for item in outbox if item.status == "uncertain" and item.handed_over_at is None
        )
        received = sum(1 for item in outbox if item.status == "uncertain" and item.message_id in captured)
        row.notes.append(
            f"{received} of {row.uncertain} uncertain replies had reached the server (none resent)"
        )
    row.seconds = time.monotonic() - started
    return row


def bots(dovecot: DovecotServer, workdir: Path, rounds: int) -> Row:
    """Three auto-responders answer every reply they get; each poll round feeds their answers back."""
    row = Row("auto-responder bots", "sqlite", mails=3)
    started = time.monotonic()
    victim = "victim@elsewhere.example"
    kinds = {
        "rfc3834": {"Auto_Submitted": "auto-replied"},
        "plain": {},
        "reply-to": {"Reply_To": victim},
    }
    with stage(dovecot, "sqlite", workdir) as st:
        for n, bot in enumerate(kinds):  # each bot's first mail is a plain request; its answers are not
            dovecot.append(st.users["pm"], buyer_mail(f"bot-{bot}", n))
        answered: set[str] = set()
        logs = ""
        for _ in range(rounds):
            logs += st.poll_once().stderr
            for captured in list(st.smtp.messages):
                reply = captured.message()
                if reply["Message-ID"] in answered:
                    continue
                answered.add(reply["Message-ID"])
                to = captured.rcpt_tos[0]
                bot = next((b for b in kinds if f"bot-{b}-" in to), None)
                if bot is None:
                    continue
                answer = EmailMessage()
                answer["From"] = to
                answer["To"] = "ta-pm@support.example.test"
                answer["Subject"] = f"Re: {reply['Subject']}"
                answer["Message-ID"] = f"<auto-{len(answered)}@{bot}.example>"
                answer["In-Reply-To"] = reply["Message-ID"]
                for name, value in kinds[bot].items():
                    answer[name.replace("_", "-")] = value
                answer.set_content(
                    f"Thank you for your message about order {372615498760000}. "
                    "Please cancel the service for order 372615498760001 as well."
                )
                dovecot.append(st.users["pm"], answer.as_bytes())
        per_target = Counter(c.rcpt_tos[0] for c in st.smtp.messages)
        counts = {
            "rfc3834": sum(n for to, n in per_target.items() if "bot-rfc3834" in to),
            "plain": sum(n for to, n in per_target.items() if "bot-plain" in to),
            "reply-to": sum(n for to, n in per_target.items() if "bot-reply-to" in to or to == victim),
        }
        row.max_per_bot = f"{max(counts.values())} (limit {REPLY_LIMIT})"
        row.notes.append(", ".join(f"{bot}: {n}" for bot, n in counts.items()) + f" over {rounds} rounds")
        row.errors_in_logs = log_problems(logs)
    row.seconds = time.monotonic() - started
    return row


# -- report ----------------------------------------------------------------------------------------------

COLUMNS = (
    ("scenario", "scenario"),
    ("db", "database"),
    ("mails", "mails"),
    ("kills", "kills"),
    ("lost", "lost"),
    ("dup cases", "duplicate_cases"),
    ("dup replies", "duplicate_replies"),
    ("false recov.", "false_recoveries"),
    ("uncertain", "uncertain"),
    ("unc. not handed over", "uncertain_not_handed_over"),
    ("max/bot", "max_per_bot"),
    ("log errors", "errors_in_logs"),
    ("s", "seconds"),
)


def table(rows: list[Row]) -> str:
    cells = [[title for title, _ in COLUMNS]]
    for row in rows:
        values = []
        for _, attr in COLUMNS:
            value = getattr(row, attr)
            values.append(f"{value:.0f}" if isinstance(value, float) else str(value))
        cells.append(values)
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"* {row.scenario} ({row.database}): {note}" for row in rows for note in row.notes]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--mails", type=int, default=500, help="backlog of the kill storm")
    parser.add_argument("--kills", type=int, default=25, help="SIGKILLs per kill storm")
    parser.add_argument("--workers-mails", type=int, default=200, help="backlog of the two-worker run")
    parser.add_argument("--cross", type=int, default=50, help="mails cross-posted to both mailboxes")
    parser.add_argument("--replies", type=int, default=10, help="replies in the lost/late 250 runs")
    parser.add_argument("--rounds", type=int, default=10, help="poll rounds with the auto-responder bots")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only", action="append", choices=["kill", "workers", "cross", "smtp", "bots"], help="repeatable"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    wanted = set(args.only or ["kill", "workers", "cross", "smtp", "bots"])
    if (reason := PostgresServer().check()) is not None:
        raise SystemExit(reason)
    rows: list[Row] = []
    dovecot = start_dovecot()
    plan: list[Callable[[Path], Row]] = []
    if "smtp" in wanted:
        for kind in ("sqlite", "postgres"):
            for fault in ("drop-after-data", "delay-250"):
                plan.append(lambda w, k=kind, f=fault: smtp_faults(dovecot, k, w, f, args.replies))
    if "cross" in wanted:
        plan.append(lambda w: cross_posted(dovecot, w, args.cross))
    if "workers" in wanted:
        plan.append(lambda w: two_workers(dovecot, w, args.workers_mails))
    if "bots" in wanted:
        plan.append(lambda w: bots(dovecot, w, args.rounds))
    if "kill" in wanted:
        for kind in ("sqlite", "postgres"):
            plan.append(lambda w, k=kind: kill_storm(dovecot, k, w, args.mails, args.kills, rng))
    try:
        with tempfile.TemporaryDirectory(prefix="mailbot-faults-") as tmp:
            for step in plan:
                row = step(Path(tmp))
                print(
                    f"{row.scenario} ({row.database}): done in {row.seconds:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(row)
    finally:
        dovecot.stop()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
