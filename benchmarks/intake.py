"""Throughput and peak memory of `mailbot poll --once`, end to end, against a real Dovecot and SMTP server.

    .venv/bin/python benchmarks/intake.py --n 2000 --runs 3
    .venv/bin/python benchmarks/intake.py --n 500,2000 --compare-helpdesk

For every N: the shared generator (`shared/bench/gen_corpus.py`) writes N synthetic buyer mails (legacy
charsets, quoted replies, attachments up to 2 MB) with a ground-truth manifest; a throwaway Dovecot gets
them once by MULTIAPPEND; every run then works on its own server-side copy of that mailbox (hard links)
with a fresh database, so runs see identical input. `mailbot poll --once` runs as a child process and
`os.wait4` gives its wall time, CPU and peak RSS (ru_maxrss: what `/usr/bin/time -v` calls "Maximum
resident set size"), taken by a small launcher process: a child forked straight from this benchmark
would report the benchmark's own peak RSS as its own (Linux keeps the parent's high-water mark at
exec). Schema creation (`mailbot db upgrade`) is untimed, like the peer's `migrate`.

A run only counts when it did the whole job: a case per mail, every order number on its case, one reply
per case received by the SMTP capture server, nothing left unprocessed in the mailbox. With
`--compare-helpdesk` the peer (django-helpdesk, through the shared contender interface) runs on the same
server, mailbox copies and SMTP server, interleaved with mailbot's runs, so the ratio comes from one
invocation; without it the ratio is against the 47 msgs/s in shared/docs/perf-baseline.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers are the benchmark's servers too

from fixtures.servers import DovecotServer, PostgresServer, SmtpCapture, dovecot_binary  # noqa: E402

#: django-helpdesk's `get_email` on this machine, same corpus (shared/docs/perf-baseline.md, row (c)).
HELPDESK_BASELINE_RATE = 47.0
TARGET_FACTOR = 10.0
TARGET_RSS_MB = 150.0
PASSWORD = "bench-pw"
PROCESSED_KEYWORD = "$MailbotProcessed"
MAILBOX = "pm"
MAILBOX_ADDRESS = "ta-pm@example.test"  # the corpus writes to ta-pm@ and ta-inspection@example.test
SECRET = "pm-imap"
DEFAULT_SHARED = REPO.parent / "shared"


# -- corpus --------------------------------------------------------------------------------------------


def ensure_corpus(shared: Path, n: int, seed: int, cache: Path) -> Path:
    """The corpus for (n, seed), generated once; the same cache path as the shared harness uses."""
    directory = cache / f"mailbench-corpus-{n}-{seed}"
    if not (directory / "corpus.json").exists():
        generator = shared / "bench" / "gen_corpus.py"
        if not generator.exists():
            raise SystemExit(f"{generator} not found: pass --shared DIR (the shared/ folder)")
        log(f"generating corpus: {n} messages, seed {seed} -> {directory}")
        subprocess.run(
            [sys.executable, str(generator), "--n", str(n), "--seed", str(seed), "--out", str(directory)],
            check=True, stdout=subprocess.DEVNULL,
        )
    return directory


def read_manifest(corpus: Path) -> list[dict[str, Any]]:
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


# -- mailbot installation --------------------------------------------------------------------------------


def write_config(
    directory: Path,
    *,
    imap_host: str,
    imap_port: int,
    username: str,
    smtp_host: str,
    smtp_port: int,
    database_url: str = "",
    security: str = "plain",
    ca_file: str | None = None,
    sent_copies: str = "folder",
    batch_size: int = 50,
    processed_action: str = "flag",
    source: Path = REPO,
) -> Path:
    """Mailbox `pm` polled, replies over plain SMTP on loopback; its password in MAILBOT_SECRET_PM_IMAP."""
    ca_line = f'ca_file = "{ca_file}"\n' if ca_file else ""
    move_line = 'move_to = "Processed"\n' if processed_action == "move" else ""
    config = directory / "config.toml"
    config.write_text(
        f"""# written by benchmarks/intake.py
data_dir = "var"
rules_dir = "{source / "rules"}"
templates_dir = "{source / "templates"}"
log_level = "WARNING"

[identity]
message_id_domain = "mailbot.example.test"

[database]
url = "{database_url}"

[outbox]
sent_copies = "{sent_copies}"

[smtp]
host = "{smtp_host}"
port = {smtp_port}
security = "plain"

[mailboxes.{MAILBOX}]
address = "{MAILBOX_ADDRESS}"
service = "Production Monitoring"

[mailboxes.{MAILBOX}.imap]
host = "{imap_host}"
port = {imap_port}
security = "{security}"
{ca_line}username = "{username}"
password_secret = "{SECRET}"
batch_size = {batch_size}
processed_action = "{processed_action}"
{move_line}
# Named by the shipped routing rules; not polled: the peer reads one mailbox, so mailbot does too.
[mailboxes.inspection]
address = "ta-inspection@example.test"
service = "Inspection"
enabled = false

[mailboxes.inspection.imap]
host = "{imap_host}"
username = "unused@bench.test"
password_secret = "inspection-imap"
""",
        encoding="utf-8",
    )
    return config


def mailbot_env(password: str, source: Path = REPO) -> dict[str, str]:
    """The child's environment; `source` other than the repo puts that checkout's `mailbot` first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_SECRET_" + SECRET.upper().replace("-", "_")] = password
    if source.resolve() != REPO:
        env["PYTHONPATH"] = str(source.resolve())
    return env


def profiled(kind: str, stem: Path, cmd: list[str]) -> list[str]:
    """cmd under cProfile (stem.prof, exact call counts, inflated time) or py-spy (stem.txt: sampled stacks,
    collapsed, with native and idle frames: where the wall time goes, at about 5 % overhead)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if kind == "cprofile":
        return [sys.executable, "-m", "cProfile", "-o", f"{stem}.prof", "-m", "mailbot", *cmd[1:]]
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit(f"{spy} not found: .venv/bin/pip install py-spy")
    return [str(spy), "record", "--idle", "--rate", "200", "--format", "raw", "-o", f"{stem}.txt", "--", *cmd]


def mailbot_command() -> list[str]:
    return [str(Path(sys.executable).parent / "mailbot")]


def inspect_store(database_url: str, manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """What mailbot stored, checked against the corpus ground truth (joined on the unique sender)."""
    from sqlmodel import Session, col, select

    from mailbot.core.parse import parse
    from mailbot.store.db import make_engine
    from mailbot.store.tables import Case, MailRecord, OutboxItem

    truth = {m["sender"].lower(): m for m in manifest}
    engine = make_engine(database_url)
    found = extra = subject_ok = probe_ok = 0
    try:
        with Session(engine) as session:
            cases = session.exec(select(Case.buyer, Case.orders, Case.subject)).all()
            for buyer, orders, subject in cases:
                expected = truth.get(buyer)
                if expected is None:
                    continue
                found += expected["order_no"] in orders
                extra += any(number != expected["order_no"] for number in orders)
                subject_ok += _unprefixed(subject) == _unprefixed(expected["subject"])
            outcomes = Counter(session.exec(select(MailRecord.outcome)).all())
            reasons = Counter(
                reason.split(":")[0]
                for reason in session.exec(
                    select(MailRecord.reason).where(col(MailRecord.outcome) != "routed")
                ).all()
            )
            outbox = Counter(session.exec(select(OutboxItem.status)).all())
            # the body as mailbot reads it (what staff see), probed for the phrase in the mail's own script
            for (raw,) in session.execute(select(MailRecord.raw).execution_options(yield_per=50)):
                mail = parse(raw)
                expected = truth.get((mail.from_addr or "").lower())
                probe_ok += expected is not None and expected["probe"] in mail.text
    finally:
        engine.dispose()
    return {
        "records": len(cases),
        "mail": dict(outcomes),
        "not_routed_reasons": dict(reasons),
        "outbox": dict(outbox),
        "order_no_found": found,
        "cases_with_extra_orders": extra,
        "body_probe_found": probe_ok,
        "subject_match": subject_ok,
    }


def _unprefixed(subject: str) -> str:
    """Subject without Re:/Fwd: prefixes (the peer drops them, mailbot keeps them)."""
    import re

    return re.sub(r"^\s*((re|fwd?|aw|sv)\s*:\s*)+", "", subject, flags=re.I).strip()


# -- servers ---------------------------------------------------------------------------------------------


def start_dovecot(users: dict[str, str]) -> DovecotServer:
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("dovecot is not installed (apt-get install -y dovecot-imapd)")
    return DovecotServer(binary, users).start()


def load_mailbox(dovecot: DovecotServer, user: str, corpus: Path, chunk: int = 50) -> float:
    """MULTIAPPEND the corpus in file order, `chunk` messages per command; returns seconds."""
    files = sorted(corpus.glob("*.eml"))
    started = time.perf_counter()
    with dovecot.connect(user) as client:
        for start in range(0, len(files), chunk):
            typ, data = client.multiappend("INBOX", [f.read_bytes() for f in files[start : start + chunk]])
            if typ != "OK":
                raise SystemExit(f"MULTIAPPEND failed: {data!r}")
    return time.perf_counter() - started


def copy_mailbox(dovecot: DovecotServer, source_user: str, user: str) -> None:
    """A fresh copy of the loaded mailbox for one run (hard links: about 0.1 s for 2000 messages)."""
    dovecot.doveadm("copy", "-u", user, "INBOX", "user", source_user, "mailbox", "INBOX", "all")


def unprocessed(dovecot: DovecotServer, user: str, *, keyword: str | None) -> int:
    """Messages still waiting: without our keyword (mailbot flags), or in INBOX at all (moved or deleted)."""
    with dovecot.connect(user) as client:
        client.select_folder("INBOX", readonly=True)
        criteria = ["NOT", "KEYWORD", keyword] if keyword else ["NOT", "DELETED"]
        return len(client.search(criteria))


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database for one run: SQLite in the run's directory or a new PostgreSQL database."""
    if kind == "sqlite":
        yield ""
        return
    server = PostgresServer()
    if (reason := server.check()) is not None:
        raise SystemExit(reason)
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


# -- timing ----------------------------------------------------------------------------------------------


@dataclass
class Timed:
    rc: int
    wall_s: float
    user_s: float
    sys_s: float
    rss_kb: int
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


# Runs the command and writes its own wall time and rusage to the file named first. A child forked
# from this (large) benchmark process would report OUR peak RSS as its own: Linux records the
# parent's high-water mark at exec. The launcher is small, so the rusage of its child is the
# command's alone.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "wall": wall, "user": usage.ru_utime,
               "sys": usage.ru_stime, "rss_kb": usage.ru_maxrss}, out)
"""


def timed(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 1800) -> Timed:
    """Run cmd as a grandchild (see _LAUNCHER): its wall time, CPU and peak RSS, and its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as usage_file:
        launcher = [sys.executable, "-c", _LAUNCHER, usage_file.name, *cmd]
        proc = subprocess.Popen(launcher, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        proc.wait()
        killer.cancel()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        try:
            usage = json.loads(Path(usage_file.name).read_text())
        except ValueError:  # the launcher was killed (timeout) before it could write
            return Timed(rc=proc.returncode or -9, wall_s=timeout, user_s=0, sys_s=0, rss_kb=0,
                         stdout=stdout, stderr=stderr)
        return Timed(
            rc=usage["rc"], wall_s=usage["wall"], user_s=usage["user"], sys_s=usage["sys"],
            rss_kb=usage["rss_kb"], stdout=stdout, stderr=stderr,
        )


# -- runs ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    contender: str
    n: int
    run: int
    timing: Timed
    replies: int
    left: int
    store: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # the job was not done: the time means nothing
    notes: list[str] = field(default_factory=list)  # done, but not all of it right (reading quality)

    @property
    def rate(self) -> float:
        return self.n / self.timing.wall_s

    def as_json(self) -> dict[str, Any]:
        t = self.timing
        return {
            "contender": self.contender, "n": self.n, "run": self.run, "rc": t.rc,
            "wall_s": round(t.wall_s, 3), "msgs_per_s": round(self.rate, 1), "user_s": round(t.user_s, 2),
            "sys_s": round(t.sys_s, 2), "peak_rss_mb": round(t.rss_kb / 1024, 1), "replies": self.replies,
            "left": self.left, "store": self.store, "problems": self.problems, "notes": self.notes,
            "stdout_tail": t.stdout[-600:], "stderr_tail": t.stderr[-1500:],
        }


@dataclass
class Bench:
    args: argparse.Namespace
    dovecot: DovecotServer
    smtp: SmtpCapture
    work: Path

    def mailbot_run(self, n: int, r: int, source_user: str | None, manifest: list[dict[str, Any]]) -> Run:
        """One timed poll on a fresh copy of `source_user`'s mailbox (None: an empty mailbox, n = 0)."""
        a = self.args
        user = f"mailbot-{n}-{r}@bench.test"
        if source_user is not None:
            copy_mailbox(self.dovecot, source_user, user)
        workdir = self.work / f"mailbot-{n}-{r}"
        workdir.mkdir(parents=True)
        tls = a.security == "tls"
        with database(a.database, workdir) as url:
            config = write_config(
                workdir, imap_host=self.dovecot.host,
                imap_port=self.dovecot.imaps_port if tls else self.dovecot.imap_port, username=user,
                smtp_host=self.smtp.host, smtp_port=self.smtp.port, database_url=url, security=a.security,
                ca_file=str(self.dovecot.cert_path) if tls else None, sent_copies=a.sent_copies,
                batch_size=a.batch_size, processed_action=a.processed_action, source=Path(a.mailbot_src),
            )
            env = mailbot_env(PASSWORD, Path(a.mailbot_src))
            setup = subprocess.run(
                [*mailbot_command(), "--config", str(config), "db", "upgrade"],
                env=env, cwd=workdir, capture_output=True, text=True,
            )
            if setup.returncode != 0:
                raise SystemExit(f"mailbot db upgrade failed:\n{setup.stderr}")
            before = len(self.smtp.messages)
            cmd = [*mailbot_command(), "--config", str(config), "poll", "--once"]
            if a.profile:
                cmd = profiled(a.profile, Path(a.profile_dir) / f"mailbot-{n}-{r}", cmd)
            timing = timed(cmd, env=env, cwd=workdir)
            replies = self.smtp.messages[before:]
            left = unprocessed(
                self.dovecot, user, keyword=PROCESSED_KEYWORD if a.processed_action == "flag" else None
            )
            store = inspect_store(url or f"sqlite:///{workdir / 'var' / 'mailbot.db'}", manifest)
        senders = {m["sender"].lower() for m in manifest}
        store["reply_recipients_in_corpus"] = sum(
            1 for reply in replies if [rcpt.lower() for rcpt in reply.rcpt_tos] in ([s] for s in senders)
        )
        run = Run("mailbot", n, r, timing, len(replies), left, store)
        run.problems, run.notes = mailbot_problems(run), mailbot_notes(run)
        self._cleanup(workdir)
        return run

    def helpdesk_run(self, n: int, r: int, source_user: str, corpus: Path) -> Run:
        user = f"helpdesk-{n}-{r}@bench.test"
        copy_mailbox(self.dovecot, source_user, user)
        workdir = self.work / f"helpdesk-{n}-{r}"
        workdir.mkdir(parents=True)
        script = Path(self.args.shared) / "bench" / "contenders" / "django_helpdesk" / "contender.sh"
        env = dict(
            os.environ, BENCH_IMAP_HOST=self.dovecot.host, BENCH_IMAP_PORT=str(self.dovecot.imap_port),
            BENCH_IMAP_USER=user, BENCH_IMAP_PASSWORD=PASSWORD, BENCH_IMAP_FOLDER="INBOX", BENCH_IMAP_TLS="0",
            BENCH_SMTP_HOST=self.smtp.host, BENCH_SMTP_PORT=str(self.smtp.port), BENCH_WORKDIR=str(workdir),
            BENCH_CORPUS_DIR=str(corpus), BENCH_EXPECTED=str(n), HELPDESK_PYTHON=self.args.helpdesk_python,
        )
        setup = subprocess.run([str(script), "setup"], env=env, capture_output=True, text=True)
        if setup.returncode != 0:
            raise SystemExit(f"django-helpdesk setup failed:\n{setup.stdout}\n{setup.stderr}")
        before = len(self.smtp.messages)
        timing = timed([str(script), "run"], env=env, cwd=workdir)
        with contextlib.suppress(TimeoutError):  # its SMTP sends are synchronous; this is a safety margin
            self.smtp.wait_for(before + n, timeout=1.0)
        replies = len(self.smtp.messages) - before
        verify = subprocess.run([str(script), "verify"], env=env, capture_output=True, text=True)
        store: dict[str, Any] = {}
        for line in reversed(verify.stdout.splitlines()):
            if line.startswith("{"):
                store = json.loads(line)
                break
        left = unprocessed(self.dovecot, user, keyword=None)
        run = Run("django-helpdesk", n, r, timing, replies, left, store)
        if timing.rc != 0:
            run.problems.append(f"exit status {timing.rc}")
        self._cleanup(workdir)
        return run

    def _cleanup(self, workdir: Path) -> None:
        if not self.args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def mailbot_problems(run: Run) -> list[str]:
    """Why a run does not count as the whole job done (each mail a case and an answer); empty if it does."""
    s, n = run.store, run.n
    problems = []
    if run.timing.rc != 0:
        problems.append(f"exit status {run.timing.rc}: {run.timing.stderr.strip()[-300:]}")
    checks = [
        ("cases created", s["records"], n),
        ("mails routed", s["mail"].get("routed", 0), n),
        ("replies received by SMTP", run.replies, n),
        ("replies marked sent", s["outbox"].get("sent", 0), n),
        ("replies to a corpus sender", s["reply_recipients_in_corpus"], n),
        ("messages left unprocessed", run.left, 0),
    ]
    return problems + [f"{what}: {got}, expected {want}" for what, got, want in checks if got != want]


def mailbot_notes(run: Run) -> list[str]:
    """What was read wrong, against the manifest: reported, but the run still measures the whole job."""
    s, n = run.store, run.n
    checks = [
        ("order number on its case", s["order_no_found"], n),
        ("body phrase in the text mailbot read", s["body_probe_found"], n),
        ("subject kept", s["subject_match"], n),
        ("cases with a wrong extra order number", s["cases_with_extra_orders"], 0),
    ]
    return [f"{what}: {got}, expected {want}" for what, got, want in checks if got != want]


# -- report ----------------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else "-"


def table(runs: list[Run]) -> str:
    header = ["N", "contender", "runs", "median s", "spread s", "msgs/s", "peak RSS MB", "CPU s", "cases"]
    header += ["replies", "left", "orders found", "vs helpdesk"]
    rows = [header]
    groups: dict[tuple[int, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.n, run.contender), []).append(run)
    for (n, contender), group in groups.items():
        peer = groups.get((n, "django-helpdesk"))
        peer_rate = statistics.median(r.rate for r in peer) if peer else HELPDESK_BASELINE_RATE
        rate = statistics.median(r.rate for r in group)
        last = group[-1].store
        ratio = f"{rate / peer_rate:.1f}x" + ("" if peer else " (vs 47/s baseline)") if n else "-"
        rows.append([
            str(n), contender, str(len(group)), f"{statistics.median(r.timing.wall_s for r in group):.2f}",
            spread([r.timing.wall_s for r in group]), f"{rate:.0f}" if n else "empty mailbox",
            f"{statistics.median(r.timing.rss_kb for r in group) / 1024:.0f}"
            f" (max {max(r.timing.rss_kb for r in group) / 1024:.0f})",
            f"{statistics.median(r.timing.cpu_s for r in group):.1f}", str(last.get("records", "?")),
            str(group[-1].replies), str(group[-1].left), str(last.get("order_no_found", "?")), ratio,
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def verdict(runs: list[Run]) -> list[str]:
    lines = []
    mailbot = [r for r in runs if r.contender == "mailbot"]
    for n in sorted({r.n for r in mailbot if r.n}):
        group = [r for r in mailbot if r.n == n]
        peer = [r for r in runs if r.contender == "django-helpdesk" and r.n == n]
        peer_rate = statistics.median(r.rate for r in peer) if peer else HELPDESK_BASELINE_RATE
        rate = statistics.median(r.rate for r in group)
        rss = max(r.timing.rss_kb for r in group) / 1024
        fast = rate >= TARGET_FACTOR * peer_rate
        small = rss < TARGET_RSS_MB
        lines.append(
            f"N={n}: {rate:.0f} msgs/s = {rate / peer_rate:.1f}x the peer's {peer_rate:.0f}/s "
            f"({'meets' if fast else 'MISSES'} the {TARGET_FACTOR:.0f}x target); peak RSS {rss:.0f} MB "
            f"({'under' if small else 'OVER'} {TARGET_RSS_MB:.0f} MB)"
        )
    for run in runs:
        lines += [f"INCOMPLETE {run.contender} N={run.n} run {run.run}: {p}" for p in run.problems]
    for n in sorted({r.n for r in mailbot if r.n}):  # reading is deterministic: one run's notes say it
        last = [r for r in mailbot if r.n == n][-1]
        lines += [f"reading, N={n}: {note}" for note in last.notes]
    return lines


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError), Path("/proc/cpuinfo").open() as info:
        model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPU {model}; Python {platform.python_version()}; load average {load}"


def revision(source: Path) -> str:
    """The commit measured, and whether the working tree differed from it (others edit while we measure)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return f"{source} (not a git checkout)"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--", "mailbot") else "")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="2000", help="corpus size; a comma list runs several (default 2000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per N (median and spread reported)")
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--compare-helpdesk", action="store_true",
                    help="also run django-helpdesk (shared contender) in this invocation, interleaved")
    ap.add_argument("--shared", default=str(DEFAULT_SHARED), help="the shared/ folder (<repo>/../shared)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cache", default="/tmp", help="where generated corpora are kept (default /tmp)")
    ap.add_argument("--security", choices=("plain", "tls"), default="plain",
                    help="IMAP to Dovecot: plain (as the peer) or implicit TLS")
    ap.add_argument("--sent-copies", choices=("folder", "imap", "none"), default="folder",
                    help="where mailbot keeps copies of sent replies (default folder, as in config.example)")
    ap.add_argument("--batch-size", type=int, default=50, help="mailbot's IMAP fetch batch")
    ap.add_argument("--processed-action", choices=("flag", "move"), default="flag",
                    help="what mailbot does to a processed message (move: to the folder Processed)")
    ap.add_argument("--helpdesk-python", help="the python of django-helpdesk's venv (run_baseline.sh)",
                    default=os.environ.get("HELPDESK_PYTHON", "/tmp/helpdesk-venv/bin/python"))
    ap.add_argument("--profile", choices=("cprofile", "py-spy"),
                    help="run mailbot under a profiler (figures then include its overhead)")
    ap.add_argument("--profile-dir", default="/tmp/mailbot-bench/profiles", help="where profiles go")
    ap.add_argument("--mailbot-src", default=str(REPO), metavar="DIR",
                    help="benchmark the mailbot package, rules and templates of another checkout (A/B)")
    ap.add_argument("--keep", action="store_true", help="keep each run's work directory")
    ap.add_argument("--out", help="results directory (default /tmp/mailbot-bench/<timestamp>)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    sizes = [int(x) for x in a.n.split(",") if x]
    shared = Path(a.shared)
    if a.compare_helpdesk and not Path(a.helpdesk_python).exists():
        raise SystemExit(
            f"{a.helpdesk_python} not found; create it with: python3 -m venv /tmp/helpdesk-venv && "
            f"/tmp/helpdesk-venv/bin/pip install -r {shared}/bench/requirements-helpdesk.txt"
        )
    out = Path(a.out or f"/tmp/mailbot-bench/{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    corpora = {n: ensure_corpus(shared, n, a.seed, Path(a.cache)) for n in sizes}

    users = {f"load-{n}@bench.test": PASSWORD for n in sizes}
    for n in [0, *sizes]:
        for r in range(1, a.runs + 1):
            users[f"mailbot-{n}-{r}@bench.test"] = PASSWORD
            users[f"helpdesk-{n}-{r}@bench.test"] = PASSWORD
    dovecot = start_dovecot(users)
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    try:
        with SmtpCapture() as smtp:
            bench = Bench(a, dovecot, smtp, work)
            log(f"dovecot on {dovecot.host}:{dovecot.imap_port} (plain) / {dovecot.imaps_port} (tls); "
                f"smtp capture on {smtp.port}; {machine()}")
            for r in range(1, a.runs + 1):  # the fixed cost of one poll: start-up, connect, nothing to do
                run = bench.mailbot_run(0, r, None, [])
                runs.append(run)
                log(f"empty mailbox run {r}: {run.timing.wall_s:.2f} s, RSS {run.timing.rss_kb / 1024:.0f} MB"
                    + (f"; PROBLEMS: {run.problems}" if run.problems else ""))
            for n in sizes:
                corpus, manifest = corpora[n], read_manifest(corpora[n])
                size_mb = sum(f.stat().st_size for f in corpus.glob("*.eml")) / 1e6
                seconds = load_mailbox(dovecot, f"load-{n}@bench.test", corpus)
                log(f"N={n}: loaded {size_mb:.0f} MB in {seconds:.1f} s")
                for r in range(1, a.runs + 1):
                    contenders = ["mailbot", "helpdesk"] if a.compare_helpdesk else ["mailbot"]
                    if r % 2 == 0:  # alternate who goes first: neither always gets the quieter slot
                        contenders.reverse()
                    for contender in contenders:
                        if contender == "mailbot":
                            run = bench.mailbot_run(n, r, f"load-{n}@bench.test", manifest)
                        else:
                            run = bench.helpdesk_run(n, r, f"load-{n}@bench.test", corpus)
                        runs.append(run)
                        t = run.timing
                        log(f"N={n} {run.contender} run {r}: {t.wall_s:.2f} s, {run.rate:.0f} msgs/s, "
                            f"CPU {t.cpu_s:.1f} s, RSS {t.rss_kb / 1024:.0f} MB, replies {run.replies}, "
                            f"left {run.left}, store {json.dumps(run.store, ensure_ascii=False)}"
                            + (f"; PROBLEMS: {run.problems}" if run.problems else ""))
                        (out / "results.json").write_text(json.dumps(
                            {"machine": machine(), "args": vars(a), "runs": [x.as_json() for x in runs]},
                            indent=1, ensure_ascii=False))
    finally:
        dovecot.stop()
        if a.keep:
            log(f"work directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    head = (f"mailbot poll --once ({revision(Path(a.mailbot_src))}), {datetime.now():%Y-%m-%d %H:%M}; "
            f"{machine()}; database {a.database}, IMAP {a.security}, processed: {a.processed_action}, "
            f"sent copies {a.sent_copies}, batch {a.batch_size}, seed {a.seed}")
    report = head + "\n\n" + table(runs) + "\n\n" + "\n".join(verdict(runs)) + "\n"
    (out / "results.md").write_text(report)
    print()
    print(report)
    print(f"raw results: {out / 'results.json'}")
    return 1 if any(run.problems for run in runs) else 0  # reading notes alone do not fail the benchmark


if __name__ == "__main__":
    sys.exit(main())
