"""The command line says what is wrong in one line: no traceback for an outside problem.

Each test is one mistake an operator made while setting mailbot up (issue 7, §5): the answer is
exactly one line on stderr naming the config file and the key (or the path), and a non-zero exit.
Permission problems run the CLI in a subprocess without the capabilities that let root ignore
permission bits, so the check meets a real "Permission denied".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.configs import maildir_config, make_maildirs

from mailbot.cli import main

REPO = Path(__file__).resolve().parents[1]
EML = Path(__file__).resolve().parent / "eml"

IMAP_MAILBOX = """
[mailboxes.remote]
address = "ta-remote@support.example.test"
service = "Inspection"

[mailboxes.remote.imap]
host = "127.0.0.1"
username = "ta-remote@support.example.test"
password_secret = "remote-imap-password"
{imap_extra}"""


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # released again: nothing listens there


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The one line on stderr; fails the test if there is not exactly one."""
        lines = self.stderr.strip().splitlines()
        assert "Traceback" not in self.stderr + self.stdout
        assert len(lines) == 1, self.stderr
        return lines[0]


@dataclass
class Installation:
    """A working mailbot on a local Maildir, with its own copy of the rules and templates."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    def write(self, *, database_url: str = "", top: str = "", extra: str = "") -> Path:
        self.config.write_text(
            maildir_config(database_url, top=top, extra=extra), encoding="utf-8"
        )
        return self.config

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Outcome:
        """The CLI in this process (fast)."""
        result = CliRunner().invoke(main, ["--config", str(self.config), *args], env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def cli_without_privileges(self, *args: str) -> Outcome:
        """The CLI in a subprocess that obeys permission bits even when the tests run as root."""
        command = [sys.executable, "-m", "mailbot", "--config", str(self.config), *args]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is needed to drop root's file capabilities"
            drop = "-dac_override,-dac_read_search,-fowner"
            command = [setpriv, "--inh-caps", drop, "--bounding-set", drop, *command]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env = {k: v for k, v in env.items() if not k.startswith("MAILBOT_SECRET_")}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=self.root)
        return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def install(tmp_path: Path) -> Installation:
    shutil.copytree(REPO / "rules", tmp_path / "rules", ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    make_maildirs(tmp_path)
    installation = Installation(tmp_path)
    installation.write()
    return installation


@pytest.fixture
def restore_modes() -> Callable[[Path, int], None]:
    """chmod that is undone after the test, so pytest can clean the folder up."""
    changed: list[tuple[Path, int]] = []

    def chmod(path: Path, mode: int) -> None:
        changed.append((path, path.stat().st_mode))
        path.chmod(mode)

    yield chmod  # type: ignore[misc]
    for path, mode in reversed(changed):
        path.chmod(mode)


# -- the installation works, so every failure below is the one mistake -----------------------------


def test_the_untouched_installation_polls_and_reports_healthy(install: Installation) -> None:
    shutil.copy(EML / "adapters-plain.eml", install.root / "mail" / "pm" / "new" / "1.eml")
    assert install.cli("poll", "--once").exit_code == 0
    status = install.cli("status")
    assert status.exit_code == 0, status.stdout
    assert status.stdout.rstrip().endswith("healthy")


# -- the config file ------------------------------------------------------------------------------


def test_a_utf16_config_file_is_one_line(install: Installation) -> None:
    install.config.write_text(install.config.read_text(), encoding="utf-16")
    outcome = install.cli("cases", "list")
    assert outcome.exit_code == 2
    assert (
        outcome.error_line
        == f"error: {install.config}: the config file is UTF-16 text; save it as UTF-8 in your editor"
    )


def test_a_binary_config_file_is_one_line(install: Installation) -> None:
    install.config.write_bytes((EML / "adapters-plain.eml").read_bytes()[:64] + b"\x00\x01\xff\xfe" * 64)
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(f"error: {install.config}: the config file is binary")


# -- database.url ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres//mailbot@db.internal/mailbot", "database.url: not a database URL"),
        ("postgres://mailbot@db.internal/mailbot", "database.url: unknown database 'postgres'"),
    ],
    ids=["malformed", "unknown-dialect"],
)
def test_a_bad_database_url_is_one_line_naming_the_key(install: Installation, url: str, says: str) -> None:
    install.write(database_url=url)
    outcome = install.cli("db", "upgrade")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(f"error: {install.config}: {says}")


def test_a_database_url_naming_psycopg_without_the_postgres_extra_is_one_line(
    install: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if `pip install mailbot` without [postgres]
    install.write(database_url="postgresql+psycopg://mailbot@db.internal/mailbot")
    outcome = install.cli("status")
    assert outcome.exit_code == 2
    line = outcome.error_line
    assert line.startswith(
        f"error: {install.config}: database.url: the database driver 'psycopg' is not installed"
    )
    assert "pip install 'mailbot[postgres]'" in line


def test_a_password_inside_the_database_url_is_one_line_that_does_not_repeat_it(
    install: Installation,
) -> None:
    install.write(database_url="postgresql+psycopg://mailbot:hunter2@db.internal/mailbot")
    outcome = install.cli("cases", "list")
    assert outcome.exit_code == 2
    assert f"{install.config}: database.url: contains a password" in outcome.error_line
    assert "MAILBOT_SECRET_" in outcome.error_line and "hunter2" not in outcome.error_line


def test_a_database_that_cannot_be_reached_is_one_line_and_exit_code_1(install: Installation) -> None:
    install.write(database_url=f"postgresql+psycopg://mailbot@127.0.0.1:{closed_port()}/mailbot")
    outcome = install.cli("cases", "list")
    assert outcome.exit_code == 1
    assert outcome.error_line.startswith("error: the database cannot be used: connection failed")


# -- data_dir -------------------------------------------------------------------------------------


def test_a_data_dir_that_is_not_writable_is_one_line(
    install: Installation, restore_modes: Callable[[Path, int], None]
) -> None:
    (install.root / "var").mkdir()
    restore_modes(install.root / "var", 0o555)
    outcome = install.cli_without_privileges("db", "upgrade")
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: data_dir: {install.root / 'var'} is not writable (Permission denied)"
    )


def test_a_data_dir_under_a_file_is_one_line(install: Installation) -> None:
    (install.root / "notes.txt").write_text("not a folder")
    install.config.write_text(
        install.config.read_text().replace('data_dir = "var"', 'data_dir = "notes.txt/var"')
    )
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: data_dir: cannot use {install.root / 'notes.txt' / 'var'}: "
        f"{install.root / 'notes.txt'} is a file, not a folder"
    )


def test_a_data_dir_whose_parent_is_read_only_is_one_line(
    install: Installation, restore_modes: Callable[[Path, int], None]
) -> None:
    (install.root / "srv").mkdir()
    restore_modes(install.root / "srv", 0o555)
    install.config.write_text(install.config.read_text().replace('data_dir = "var"', 'data_dir = "srv/var"'))
    outcome = install.cli_without_privileges("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: data_dir: cannot create {install.root / 'srv' / 'var'}: "
        f"{install.root / 'srv'} is not writable (Permission denied)"
    )


# -- rules, templates, Maildir, CA file -----------------------------------------------------------


def test_an_unreadable_rules_folder_is_one_line(
    install: Installation, restore_modes: Callable[[Path, int], None]
) -> None:
    restore_modes(install.root / "rules", 0o000)
    outcome = install.cli_without_privileges("poll", "--once")
    assert outcome.exit_code == 2
    folder = install.root / "rules"
    assert outcome.error_line == (
        f"error: {install.config}: rules_dir: cannot read the folder {folder} (Permission denied)"
    )


def test_an_unreadable_routing_file_is_one_line(
    install: Installation, restore_modes: Callable[[Path, int], None]
) -> None:
    restore_modes(install.root / "rules" / "routing.toml", 0o000)
    outcome = install.cli_without_privileges("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: rules_dir: cannot read {install.root / 'rules' / 'routing.toml'} "
        "(Permission denied)"
    )


def test_a_missing_templates_folder_is_blamed_on_templates_dir(install: Installation) -> None:
    shutil.rmtree(install.root / "templates")
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: templates_dir: {install.root / 'templates'} does not exist"
    )


@pytest.mark.parametrize("command", [("poll", "--once"), ("run",)])
def test_a_maildir_that_does_not_exist_is_one_line_and_is_not_created(
    install: Installation, command: tuple[str, ...]
) -> None:
    shutil.rmtree(install.root / "mail" / "pm")
    outcome = install.cli_without_privileges(*command)  # a subprocess: a worker that starts would time out
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(
        f"error: {install.config}: mailboxes.pm.maildir.path: {install.root / 'mail' / 'pm'} does not exist"
    )
    assert not (install.root / "mail" / "pm").exists()


def test_a_missing_ca_file_names_the_key_and_the_path(install: Installation) -> None:
    install.write(extra=IMAP_MAILBOX.format(imap_extra='ca_file = "certs/private-ca.pem"\n'))
    outcome = install.cli("poll", "--once", env={"MAILBOT_SECRET_REMOTE_IMAP_PASSWORD": "x"})
    assert outcome.exit_code == 2
    assert outcome.error_line == (
        f"error: {install.config}: mailboxes.remote.imap.ca_file: "
        f"{install.root / 'certs' / 'private-ca.pem'} does not exist"
    )


def test_a_missing_smtp_ca_file_names_the_key_and_the_path(install: Installation) -> None:
    install.write(extra='\n[smtp]\nhost = "smtp.example.test"\nca_file = "/etc/ssl/nowhere/ca.pem"\n')
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert (
        outcome.error_line == f"error: {install.config}: smtp.ca_file: /etc/ssl/nowhere/ca.pem does not exist"
    )


# -- ports and mailboxes --------------------------------------------------------------------------


@pytest.mark.parametrize("port", [0, 99999])
def test_a_port_out_of_range_is_one_line(install: Installation, port: int) -> None:
    install.write(extra=IMAP_MAILBOX.format(imap_extra=f"port = {port}\n"))
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(
        f"error: {install.config}: mailboxes.remote.imap.port: must be a TCP port between 1 and 65535"
    )


def test_the_same_address_on_two_mailboxes_is_one_line(install: Installation) -> None:
    install.write(extra=IMAP_MAILBOX.format(imap_extra="").replace("ta-remote@support", "ta-pm@support", 1))
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(
        f"error: {install.config}: mailboxes.remote.address: ta-pm@support.example.test is already"
    )


def test_the_same_imap_login_on_two_mailboxes_is_one_line(install: Installation) -> None:
    second = IMAP_MAILBOX.replace("[mailboxes.remote", "[mailboxes.other").replace(
        'address = "ta-remote@', 'address = "ta-other@'
    )
    install.write(extra=IMAP_MAILBOX.format(imap_extra="") + second.format(imap_extra=""))
    outcome = install.cli("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(
        f"error: {install.config}: mailboxes.other.imap.username: ta-remote@support.example.test on "
        "127.0.0.1 (folder INBOX) is already the IMAP login of mailboxes.remote"
    )


# -- secrets: only the commands that connect need them ---------------------------------------------


def test_poll_without_the_imap_secret_is_one_line_naming_the_variable(install: Installation) -> None:
    install.write(extra=IMAP_MAILBOX.format(imap_extra=""))
    outcome = install.cli_without_privileges("poll", "--once")
    assert outcome.exit_code == 2
    assert outcome.error_line.startswith(f"error: {install.config}: mailboxes.remote.imap.password_secret")
    assert "MAILBOT_SECRET_REMOTE_IMAP_PASSWORD" in outcome.error_line


@pytest.mark.parametrize(
    "command", [("db", "upgrade"), ("cases", "list"), ("status", "--json"), ("rules", "check")]
)
def test_staff_and_supervisor_commands_run_without_the_mail_server_secrets(
    install: Installation, command: tuple[str, ...]
) -> None:
    install.write(
        extra=IMAP_MAILBOX.format(imap_extra="")
        + '\n[smtp]\nhost = "127.0.0.1"\nusername = "bot"\npassword_secret = "smtp-password"\n'
    )
    assert install.cli_without_privileges("db", "upgrade").exit_code == 0
    outcome = install.cli_without_privileges(*command)
    assert "secret" not in outcome.stderr
    # status is unhealthy (never polled), but it answered: exit 1 with its report, not a config error
    assert outcome.exit_code == (1 if command[0] == "status" else 0), outcome.stderr


# -- a database that was never upgraded ------------------------------------------------------------


@pytest.mark.parametrize("command", [("status",), ("cases", "list"), ("cases", "show", "K7Q2XZ")])
def test_staff_commands_on_a_database_never_upgraded_say_to_run_db_upgrade(
    install: Installation, database_url: str, command: tuple[str, ...]
) -> None:
    install.write(database_url=database_url)
    outcome = install.cli(*command)
    assert outcome.exit_code == 1
    assert outcome.error_line.startswith("error: ")
    assert outcome.error_line.endswith("; run `mailbot db upgrade` first")


def test_an_empty_sqlite_file_is_not_mistaken_for_a_database(install: Installation) -> None:
    (install.root / "var").mkdir()
    (install.root / "var" / "mailbot.db").write_bytes(b"")
    outcome = install.cli("cases", "list")
    assert outcome.exit_code == 1
    assert (
        outcome.error_line == "error: the database has no mailbot tables yet; run `mailbot db upgrade` first"
    )
