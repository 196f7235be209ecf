"""Long commands show a progress bar on a terminal and nothing of it when their output is piped.

Each command runs as the operator runs it: a child process whose stdout and stderr are a real
pseudo-terminal (the `pty` module), or pipes. On the terminal a bar with counts appears, log lines
land above it, not inside it; piped, the output is the plain report, without one escape sequence.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.intake import REPO, Env

from mailbot.cli.progress import TerminalBar

BACKLOG = (REPO / "tests" / "eml" / "progress" / "backlog-cancel.eml").read_bytes()
LABELLED = REPO / "tests" / "eml" / "heldout6"  # 50 labelled mails
BAR = re.compile(r"\[[#-]+\]")


def backlog(n: int) -> list[bytes]:
    return [BACKLOG.replace(b"NNNNN", f"{i:05d}".encode()) for i in range(n)]


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180) -> tuple[int, str]:
    """Run `python -m mailbot ARGS` with a pseudo-terminal as stdin, stdout and stderr."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def piped(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mailbot", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=180)


def plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def visible_lines(output: str) -> list[str]:
    """What a terminal shows of each line: the text after its last carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in output.replace("\r\n", "\n").split("\n")]


# -- poll --once --------------------------------------------------------------------------------------


@pytest.mark.imap
def test_poll_once_on_a_terminal_shows_a_bar_over_the_backlog_with_the_logs_above_it(env: Env) -> None:
    env.dovecot.append_many(env.users["pm"], backlog(30))

    code, output = on_a_terminal(["--config", str(env.config), "poll", "--once"], env.env, env.config.parent)

    assert code == 0, output
    assert re.search(r"pm  \[#+\]  30/30  100%", output), output[-2000:]
    assert re.search(r"pm  \[[#-]*-[#-]*\]  \d+/30", output)  # drawn while under way, not only at the end
    assert "pm: 30 fetched, 30 routed" in output
    logged = [line for line in visible_lines(output) if " INFO " in line]
    assert len(logged) >= 30  # one line per mail
    assert not [line for line in logged if BAR.search(line)]  # above the bar, never inside it


@pytest.mark.imap
def test_poll_once_piped_prints_the_same_report_and_no_bar(env: Env) -> None:
    env.dovecot.append_many(env.users["pm"], backlog(4))

    result = env.poll()

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "pm: 4 fetched, 4 routed, 0 ignored, 0 quarantined, 4 new cases",
        "inspection: 0 fetched, 0 routed, 0 ignored, 0 quarantined, 0 new cases",
        "outbox: 4 sent, 0 to retry, 0 failed",
    ]
    for stream in (result.stdout, result.stderr):
        assert "\r" not in stream and "\x1b" not in stream and not BAR.search(stream)


# -- eval and replay: no server -----------------------------------------------------------------------


def test_eval_on_a_terminal_shows_a_bar_and_piped_prints_only_the_report(tmp_path: Path) -> None:
    code, output = on_a_terminal(["eval", str(LABELLED)], plain_env(), tmp_path)
    result = piped(["eval", str(LABELLED)], plain_env(), tmp_path)

    assert code == 0 and result.returncode == 0, output + result.stderr
    assert re.search(r"reading and deciding  \[#+\]  50/50  100%", output), output[-2000:]
    assert result.stdout.startswith("50 labelled mails\n")
    assert result.stdout in output.replace("\r\n", "\n")  # the same report on the terminal
    assert result.stderr == ""
    assert "\r" not in result.stdout and "\x1b" not in result.stdout


def test_rules_replay_on_a_terminal_shows_a_bar_over_the_corpus(tmp_path: Path) -> None:
    args = ["rules", "replay", "--rules", str(REPO / "rules"), "--corpus", str(LABELLED)]
    args += ["--rules-dir", str(REPO / "rules"), "--templates-dir", str(REPO / "templates")]

    code, output = on_a_terminal(args, plain_env(), tmp_path)
    result = piped(args, plain_env(), tmp_path)

    assert code == 0 and result.returncode == 0, output + result.stdout + result.stderr
    assert re.search(r"replaying  \[#+\]  50/50  100%", output), output[-2000:]
    assert result.stdout in output.replace("\r\n", "\n")
    assert "\x1b" not in result.stdout + result.stderr and not BAR.search(result.stdout + result.stderr)


# -- quarantine reprocess --all -----------------------------------------------------------------------


@pytest.mark.imap
def test_quarantine_reprocess_all_on_a_terminal_shows_a_bar_over_the_quarantine(env: Env) -> None:
    base = env.config.read_text(encoding="utf-8")
    env.config.write_text(base + "\n[limits]\nmessage_budget_seconds = 0.000001\n", encoding="utf-8")
    env.dovecot.append_many(env.users["pm"], backlog(3))
    assert "3 quarantined" in env.poll().stdout
    env.config.write_text(base, encoding="utf-8")

    code, output = on_a_terminal(
        ["--config", str(env.config), "quarantine", "reprocess", "--all"], env.env, env.config.parent
    )

    assert code == 0, output
    assert re.search(r"reprocessing  \[#+\]  3/3  100%", output), output[-2000:]
    assert "3 of 3 decided; 3 replies queued" in output


# -- the time left ------------------------------------------------------------------------------------


def test_the_bar_says_how_long_is_left_once_it_knows_the_pace() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        bar = TerminalBar("work", terminal)
        bar(0, 10)
        time.sleep(1.1)  # click measures the pace over at least a second
        bar(1, 10)
        bar.close()
    output = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            output += os.read(master, 65536)
        except OSError:
            break
    os.close(master)
    assert re.search(rb"work  \[#+-+\]  1/10   10%  00:00:\d\d left", output), output
