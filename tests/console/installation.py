"""A mailbot installation whose cases were opened by the real intake, for the console.

By default both mailboxes are local Maildirs (fast, enough for what a page shows). The acceptance
test gives it the real servers instead: the "pm" mailbox on Dovecot over IMAP and replies sent to
an aiosmtpd capture server, so a buyer's answer travels the same way it does in production.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from fixtures.servers import DovecotServer, SmtpCapture
from sqlalchemy.engine import Engine

from mailbot.runtime import Runtime, build_runtime
from mailbot.services import accounts
from mailbot.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml" / "console"
PASSWORD = "correct horse battery"

CONFIG = """\
data_dir = "var"
rules_dir = "{rules}"
templates_dir = "{templates}"
log_level = "WARNING"
secrets_dir = "secrets"

[identity]
message_id_domain = "mailbot.example.test"

[database]
url = "{database_url}"

{pm}
[mailboxes.inspection]
address = "ta-inspection@support.example.test"
service = "Inspection"
source = "maildir"
maildir = {{ path = "mail/inspection" }}
"""

PM_MAILDIR = """\
[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = { path = "mail/pm" }
"""

PM_IMAP = """\
[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"

[mailboxes.pm.imap]
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{user}"
password_secret = "pm-imap"
processed_action = "flag"
"""

SMTP = """
[outbox]
sent_copies = "folder"
backoff_seconds = 0

[smtp]
host = "127.0.0.1"
port = {port}
security = "plain"
"""

_names = itertools.count()


@dataclass
class Installation:
    root: Path
    config: Path
    runtime: Runtime
    dovecot: DovecotServer | None = None
    imap_user: str = ""

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def deliver(self, mailbox: str, raw: bytes) -> None:
        """Put a message in `mailbox`: APPENDed to Dovecot when "pm" is on IMAP, else a Maildir file."""
        if mailbox == "pm" and self.dovecot is not None:
            self.dovecot.append(self.imap_user, raw)
            return
        folder = self.root / "mail" / mailbox
        for sub in ("new", "cur", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "new" / f"{next(_names):06d}.console.eml").write_bytes(raw)

    def deliver_file(self, mailbox: str, name: str) -> None:
        self.deliver(mailbox, (EML / name).read_bytes())

    def poll(self) -> list[str]:
        """Process every mailbox once; the references of the cases opened."""
        opened: list[str] = []
        for name in ("pm", "inspection"):
            report = self.runtime.poll(name)
            assert report.ok, report.error
            opened.extend(report.cases_created)
        return opened

    def user(self, email: str, role: str = "staff") -> str:
        accounts.add_user(self.engine, email, role, PASSWORD)
        return email


def make_installation(
    root: Path,
    database_url: str,
    *,
    dovecot: DovecotServer | None = None,
    imap_user: str = "",
    smtp: SmtpCapture | None = None,
) -> Installation:
    """Maildirs by default; with `dovecot` and `imap_user` the "pm" mailbox is that IMAP account,
    with `smtp` the outbox sends to that server (otherwise replies stay in the outbox folder)."""
    (root / "secrets").mkdir(parents=True, exist_ok=True)
    pm = PM_MAILDIR
    if dovecot is not None:
        pm = PM_IMAP.format(port=dovecot.imap_port, user=imap_user)
        (root / "secrets" / "pm-imap").write_text(dovecot.password(imap_user), encoding="utf-8")
    text = CONFIG.format(
        rules=REPO / "rules", templates=REPO / "templates", database_url=database_url, pm=pm
    )
    if smtp is not None:
        text += SMTP.format(port=smtp.port)
    for box in ("pm", "inspection"):
        for sub in ("new", "cur", "tmp"):
            (root / "mail" / box / sub).mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config)
    runtime = build_runtime(settings)
    return Installation(root=root, config=config, runtime=runtime, dovecot=dovecot, imap_user=imap_user)
