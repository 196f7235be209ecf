"""The command line says what is wrong in one line: no traceback for an outside problem."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from mailbot.cli import main

REPO = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # released again: nothing listens there


def test_a_database_that_cannot_be_reached_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "mail" / "pm" / "new").mkdir(parents=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""data_dir = "var"
rules_dir = "{REPO / 'rules'}"
templates_dir = "{REPO / 'templates'}"

[database]
url = "postgresql+psycopg://mailbot@127.0.0.1:{closed_port()}/mailbot"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = {{ path = "{tmp_path / 'mail' / 'pm'}" }}
""",
        encoding="utf-8",
    )

    result = CliRunner().invoke(main, ["--config", str(config), "cases", "list"])

    assert result.exit_code == 1
    assert result.output.startswith("error: the database cannot be used: connection failed")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
