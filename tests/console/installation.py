"""A mailbot installation on local Maildirs whose cases were opened by the real intake, for the console."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

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

[identity]
message_id_domain = "mailbot.example.test"

[database]
url = "{database_url}"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = {{ path = "mail/pm" }}

[mailboxes.inspection]
address = "ta-inspection@support.example.test"
service = "Inspection"
source = "maildir"
maildir = {{ path = "mail/inspection" }}
"""

_names = itertools.count()


@dataclass
class Installation:
    root: Path
    config: Path
    runtime: Runtime

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def deliver(self, mailbox: str, raw: bytes) -> None:
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


def make_installation(root: Path, database_url: str) -> Installation:
    for box in ("pm", "inspection"):
        for sub in ("new", "cur", "tmp"):
            (root / "mail" / box / sub).mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    config.write_text(
        CONFIG.format(rules=REPO / "rules", templates=REPO / "templates", database_url=database_url),
        encoding="utf-8",
    )
    settings = load_settings(config)
    return Installation(root=root, config=config, runtime=build_runtime(settings))
