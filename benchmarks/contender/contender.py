"""The setup and verify halves of contender.sh: mailbot configured from the harness' BENCH_* environment.

Reuses benchmarks/intake.py (config, store checks), so the harness and intake.py measure the same
installation and judge it by the same ground truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intake import inspect_store, mailbot_command, mailbot_env, read_manifest, write_config


def setup() -> int:
    env = os.environ
    if env.get("BENCH_IMAP_TLS", "0") != "0":
        raise SystemExit("contender.py: only plain IMAP on loopback is wired up (BENCH_IMAP_TLS=0)")
    workdir = Path(env["BENCH_WORKDIR"])
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir, imap_host=env["BENCH_IMAP_HOST"], imap_port=int(env["BENCH_IMAP_PORT"]),
        username=env["BENCH_IMAP_USER"], smtp_host=env["BENCH_SMTP_HOST"],
        smtp_port=int(env["BENCH_SMTP_PORT"]),
        processed_action="move",  # the harness counts what is left in INBOX; the peer deletes, we move
    )
    done = subprocess.run(
        [*mailbot_command(), "--config", str(config), "db", "upgrade"],
        env=mailbot_env(env["BENCH_IMAP_PASSWORD"]), cwd=workdir, capture_output=True, text=True,
    )
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def verify() -> int:
    workdir = Path(os.environ["BENCH_WORKDIR"])
    manifest = read_manifest(Path(os.environ["BENCH_CORPUS_DIR"]))
    found = inspect_store(f"sqlite:///{workdir / 'var' / 'mailbot.db'}", manifest)
    print(json.dumps(found, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    commands = {"setup": setup, "verify": verify}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit("usage: contender.py setup|verify")
    sys.exit(commands[sys.argv[1]]())
