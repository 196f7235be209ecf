"""Case statuses under intake (issue 8): mail from a Maildir through `poll_mailbox` into SQLite and
PostgreSQL, with the case work services setting the statuses staff would set.

A new case starts "new"; the buyer's own answer reopens a case that was waiting on them or resolved;
a follow-up by order number joins a resolved case; a closed case is never reopened by mail: a new
case is opened and linked to it by an event on each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services import casework
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml" / "statuses"
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
STAFF = "ana@support.example"


class Desk:
    """One Maildir polled by the real intake into a real database, and the cases it opened."""

    def __init__(self, root: Path, engine: Engine) -> None:
        self.path = root / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (self.path / sub).mkdir(parents=True)
        self.engine = engine
        self.count = 0
        templates = TemplateStore(REPO / "templates")
        self.intake = Intake(
            engine=engine,
            identity=US,
            rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
            renderer=templates,
            mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
            clock=lambda: datetime.now(UTC),
        )

    def deliver(self, name: str, **fill: str) -> PollReport:
        raw = (EML / name).read_text()
        self.count += 1
        for key, value in {"N": str(self.count), **fill}.items():
            raw = raw.replace("{" + key + "}", value)
        (self.path / "new" / f"{self.count:05d}.mail").write_text(raw)
        report = poll_mailbox(self.intake, "pm", MaildirSource(self.path))
        assert report.ok, report.error
        return report

    def answer(self, name: str = "answer.eml") -> PollReport:
        """The buyer answers our last reply (In-Reply-To our Message-ID, our subject)."""
        with Session(self.engine) as session:
            reply = session.exec(select(OutboxItem).order_by(col(OutboxItem.id).desc())).first()
            assert reply is not None
            subject = next(
                line.removeprefix(b"Subject: ").decode()
                for line in reply.raw.splitlines()
                if line.startswith(b"Subject: ")
            )
        return self.deliver(name, IN_REPLY_TO=f"<{reply.message_id.strip('<>')}>", SUBJECT=subject)

    def case(self, ref: str) -> Case:
        with Session(self.engine) as session:
            case = session.exec(select(Case).where(Case.ref == ref)).one()
            session.expunge(case)
            return case

    def case_of_last_mail(self) -> str:
        with Session(self.engine) as session:
            mail = session.exec(select(MailRecord).order_by(col(MailRecord.id).desc())).first()
            assert mail is not None and mail.case_id is not None
            case = session.get(Case, mail.case_id)
            assert case is not None
            return case.ref

    def events(self, ref: str, kind: str) -> list[str]:
        case = self.case(ref)
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(CaseEvent.summary)
                    .where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
                    .order_by(col(CaseEvent.id))
                ).all()
            )


@pytest.fixture
def desk(tmp_path: Path, engine: Engine) -> Desk:
    return Desk(tmp_path, engine)


def opened(desk: Desk) -> str:
    (ref,) = desk.deliver("request.eml").cases_created
    return ref


def test_a_case_opened_by_mail_starts_as_new(desk: Desk) -> None:
    assert desk.case(opened(desk)).status == "new"


@pytest.mark.parametrize("status", ["waiting", "resolved"])
def test_the_buyers_answer_reopens_a_case_waiting_on_them_or_resolved(desk: Desk, status: str) -> None:
    ref = opened(desk)
    casework.set_status(desk.engine, ref, status, by=STAFF)

    report = desk.answer()

    assert report.cases_created == [] and desk.case_of_last_mail() == ref
    case = desk.case(ref)
    assert case.status == "open" and case.resolved_at is None
    assert desk.events(ref, "status")[-1] == f"status {status} → open: the buyer wrote again"


def test_an_auto_reply_to_a_waiting_case_leaves_it_waiting(desk: Desk) -> None:
    ref = opened(desk)
    casework.set_status(desk.engine, ref, "waiting", by=STAFF)

    desk.answer("auto-reply.eml")

    assert desk.case(ref).status == "waiting"


def test_a_follow_up_by_order_number_joins_and_reopens_a_resolved_case(desk: Desk) -> None:
    ref = opened(desk)
    casework.set_status(desk.engine, ref, "resolved", by=STAFF)

    report = desk.deliver("follow-up-by-order.eml")

    assert report.cases_created == [] and desk.case_of_last_mail() == ref
    assert desk.case(ref).status == "open"


def test_a_closed_case_is_never_reopened_a_new_linked_case_is_opened(desk: Desk) -> None:
    ref = opened(desk)
    casework.set_status(desk.engine, ref, "resolved", by=STAFF)
    later = datetime.now(UTC) + timedelta(days=8)
    assert casework.close_resolved(desk.engine, timedelta(days=7), clock=lambda: later) == (ref,)

    (new_ref,) = desk.answer().cases_created

    assert new_ref != ref and desk.case_of_last_mail() == new_ref
    assert desk.case(ref).status == "closed"
    assert desk.case(new_ref).status == "new"
    assert desk.events(new_ref, "linked") == [f"continues closed case {ref}"]
    assert desk.events(new_ref, "routed")[0].startswith(f"opened case {new_ref} (case {ref} is closed): ")
    assert desk.events(ref, "linked") == [f"the buyer wrote again; continued in case {new_ref}"]


def test_a_follow_up_by_order_number_does_not_join_a_closed_case(desk: Desk) -> None:
    ref = opened(desk)
    casework.set_status(desk.engine, ref, "closed", by=STAFF)

    (new_ref,) = desk.deliver("follow-up-by-order.eml").cases_created

    assert new_ref != ref and desk.case(ref).status == "closed"
