"""A mailbot installation on local Maildirs whose store was filled by the real ingest (for replay and stats).

Round one delivers saved buyer mail and machine mail to both mailboxes. Round two delivers mail that
joins the cases round one opened (a follow-up naming its case, an out-of-office reply on a case, a
buyer writing again about the same order) and a second copy of an earlier mail (a duplicate the rules
never see).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from fixtures.configs import maildir_config, make_maildirs
from sqlmodel import Session, col, select

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.templates import TemplateStore
from mailbot.runtime import Runtime, build_runtime
from mailbot.services.rules_admin import RulesContext
from mailbot.settings import load_settings
from mailbot.store.tables import Case, MailRecord

REPO = Path(__file__).resolve().parents[2]
RULES_MAIL = REPO / "rules" / "tests" / "mail"
EXAMPLES = REPO / "examples" / "mail"

#: Round one: (mailbox, saved mail).
FIRST_ROUND = [
    ("pm", RULES_MAIL / "cancellation-with-order.eml"),
    ("pm", RULES_MAIL / "erp-cancellation-notice.eml"),
    ("pm", RULES_MAIL / "newsletter.eml"),
    ("pm", RULES_MAIL / "out-of-office.eml"),
    ("pm", RULES_MAIL / "bounce.eml"),
    ("pm", EXAMPLES / "pm" / "01-cancellation.eml"),
    ("pm", EXAMPLES / "pm" / "02-no-order-number.eml"),
    ("inspection", RULES_MAIL / "cancellation-no-order.eml"),
    ("inspection", RULES_MAIL / "report-dispute.eml"),
    ("inspection", EXAMPLES / "inspection" / "01-report-dispute.eml"),
    ("inspection", EXAMPLES / "inspection" / "02-status-es.eml"),
]

# Message-IDs (without brackets) of the mail both rounds deliver, for assertions.
CANCELLATION = "CAF7d1q9-cancel-01@mail.andes-imports.example"
ERP_NOTICE = "erp-88213-cancel@erp.andes-imports.example"
NEWSLETTER = "nl-2026-10.77@sourcing-weekly.example"
OOO_UNKNOWN_CASE = "ooo-5521@mail.andes-imports.example"
BOUNCE = "20260303091230.ABC1234@mx.support.example.test"
CANCELLATION_2 = "CAF7x9Q2m1@mail.andes-trading.example"
NO_ORDER_PM = "20261116100211.4411@becker-tools.example"
NO_ORDER_INSPECTION = "20260303100244.4411@becker-handel.example"
DISPUTE = "a1b2c3d4-report@sato-trading.example"
DISPUTE_2 = "9b1f4c2e-77a1@gulf-home.example"
STATUS_ES = "a81c2f@importadora-sol.example"
FOLLOW_UP = "round2-follow-up@mail.andes-imports.example"
OOO_ON_CASE = "round2-ooo@gulf-home.example"
SAME_ORDER = "round2-same-order@mail.andes-trading.example"


def _mail(
    sender: str, to: str, subject: str, body: str, message_id: str, headers: dict[str, str] | None = None
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    message["Message-ID"] = f"<{message_id}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


@dataclass
class Installation:
    root: Path
    runtime: Runtime
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    def deliver(self, mailbox: str, raw: bytes) -> None:
        """Drop a mail into the mailbox's Maildir; file names keep the delivery order."""
        n = next(self._names)
        (self.root / "mail" / mailbox / "new" / f"{1763280000 + n}.M{n}P1.test").write_bytes(raw)

    def poll(self) -> None:
        for name in self.runtime.enabled_mailboxes():
            report = self.runtime.poll(name)
            assert report.ok, report.error

    def first_round(self) -> None:
        for mailbox, path in FIRST_ROUND:
            self.deliver(mailbox, path.read_bytes())
        self.poll()

    def second_round(self) -> None:
        """Mail that joins round one's cases, each in one of the three ways a mail can, plus a duplicate."""
        cancellation = self.case_of(CANCELLATION)
        dispute = self.case_of(DISPUTE_2)
        self.deliver(
            "pm",
            _mail(
                "Maria Lopez <maria.lopez@andes-imports.example>",
                "ta-pm@support.example.test",
                f"Re: [Case #{cancellation}] Cancel production monitoring",
                "Hello, any news on this? Thank you, Maria",
                FOLLOW_UP,
            ),
        )
        self.deliver(
            "inspection",
            _mail(
                "Ahmed Karim <a.karim@gulf-home.example>",
                "ta-inspection@support.example.test",
                f"Automatic reply: [Case #{dispute}] Inspection report is wrong",
                "I am out of the office until Monday and will answer your mail when I am back.",
                OOO_ON_CASE,
                {"Auto-Submitted": "auto-replied"},
            ),
        )
        self.deliver(
            "pm",
            _mail(
                "Maria Lopez <maria.lopez@andes-trading.example>",
                "ta-pm@support.example.test",
                "Order 162534987612345",
                "Hello, what is the status of the production monitoring for order 162534987612345? "
                "Has the report been uploaded yet? Maria",
                SAME_ORDER,
            ),
        )
        self.deliver("pm", (RULES_MAIL / "newsletter.eml").read_bytes())  # the same bytes again
        self.poll()

    # -- looking at the store

    def records(self) -> list[MailRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(MailRecord).order_by(col(MailRecord.id))))

    def mail_ids(self) -> dict[str, int]:
        """Message-ID (without brackets) -> ledger id, of the first copy of each mail."""
        ids: dict[str, int] = {}
        for record in self.records():
            if record.message_id and record.id is not None:
                ids.setdefault(record.message_id.strip("<>"), record.id)
        return ids

    def case_of(self, message_id: str) -> str:
        with Session(self.engine) as session:
            record = session.exec(
                select(MailRecord).where(col(MailRecord.message_id).in_([message_id, f"<{message_id}>"]))
            ).first()
            assert record is not None and record.case_id is not None, message_id
            case = session.get(Case, record.case_id)
            assert case is not None
            return case.ref

    def set_fetched_at(self, message_ids: list[str], when: datetime) -> None:
        """Pretend these mails arrived at `when` (the ledger stamps mail with the wall clock)."""
        ids = self.mail_ids()
        with Session(self.engine) as session:
            for message_id in message_ids:
                record = session.get(MailRecord, ids[message_id])
                assert record is not None
                record.fetched_at = when
                session.add(record)
            session.commit()

    # -- rules

    def draft(self, edit: Callable[[str], str], name: str = "rules-draft") -> Path:
        """A copy of the live rules folder with routing.toml changed by `edit` (which must change it)."""
        target = self.root / name
        shutil.copytree(self.rules_dir, target)
        routing = target / "routing.toml"
        before = routing.read_text(encoding="utf-8")
        after = edit(before)
        assert after != before, "the draft edit changed nothing"
        routing.write_text(after, encoding="utf-8")
        return target

    def context(self) -> RulesContext:
        settings = self.runtime.settings
        return RulesContext(
            rules_dir=self.rules_dir,
            identity=self.runtime.intake.identity,
            reading_config=load_reading_config(self.rules_dir),
            known_templates=TemplateStore(settings.templates_dir).names(),
            known_mailboxes=frozenset(settings.mailboxes),
            mailbox_addresses={box.address: name for name, box in settings.mailboxes.items()},
        )

    def mailbot(self, *args: str) -> Result:
        """`mailbot --config <this installation's config> …`, in-process."""
        from mailbot.cli import main

        return CliRunner().invoke(main, ["--config", str(self.config), *args])


def install(root: Path, database_url: str, *, live_edit: Callable[[str], str] | None = None) -> Installation:
    """Set up the installation (rules: a copy of the shipped ones, changed by `live_edit`), store empty."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "rules", root / "rules")
    if live_edit is not None:
        routing = root / "rules" / "routing.toml"
        routing.write_text(live_edit(routing.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "config.toml").write_text(
        maildir_config(database_url, templates=REPO / "templates"), encoding="utf-8"
    )
    make_maildirs(root)
    return Installation(root=root, runtime=build_runtime(load_settings(root / "config.toml")))
