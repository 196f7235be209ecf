"""Every reply guard, wired into intake: mail through `poll_mailbox` from a Maildir into SQLite and
PostgreSQL, and the outbox says who would be written to.

Each test is built so that exactly one guard stands between the mail and a reply: take that guard
out of the ingest wiring and the test fails. Where the shipped rules would also refuse (machines
get no reply there), a careless rule set that answers everything is used instead.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.replies import ReplyLimits
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store import guards
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem, Suppression

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml" / "guards"
US = Identity(
    addresses=frozenset({"ta-pm@support.example.test", "ta-inspection@support.example.test"}),
    message_id_domain="mailbot.example.test",
)


def request(n: int, sender: str, *extra: str) -> bytes:
    """The buyer request fixture from `sender` (a From header value), with extra header lines."""
    text = (EML / "request.eml").read_text()
    return (
        text.replace("{FROM}", sender)
        .replace("{EXTRA}", "".join(f"{line}\n" for line in extra))
        .replace("{N}", str(n))
    ).encode()


class Mailbox:
    """A Maildir that the test fills, polled by the real intake service into a real database."""

    def __init__(self, root: Path, engine: Engine, rules: Path, limits: ReplyLimits) -> None:
        self.path = root / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (self.path / sub).mkdir(parents=True)
        self.engine = engine
        self.count = 0
        templates = TemplateStore(REPO / "templates")
        self.intake = Intake(
            engine=engine,
            identity=US,
            rules=RulesWatcher(rules, known_templates=templates.names),
            renderer=templates,
            mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
            limits=limits,
            clock=lambda: datetime.now(UTC),
        )

    def deliver(self, *mails: bytes) -> None:
        for raw in mails:
            self.count += 1
            (self.path / "new" / f"{self.count:05d}.mail").write_bytes(raw)

    def poll(self) -> PollReport:
        report = poll_mailbox(self.intake, "pm", MaildirSource(self.path))
        assert report.ok, report.error
        return report

    def replies_to(self) -> list[str]:
        """The recipient of every reply intake queued, in order."""
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxItem.rcpt_to).order_by(col(OutboxItem.id))).all())

    def events(self, kind: str) -> list[str]:
        with Session(self.engine) as session:
            return list(session.exec(select(CaseEvent.summary).where(CaseEvent.kind == kind)).all())


@pytest.fixture
def shipped(tmp_path: Path, engine: Engine) -> Mailbox:
    """The shipped rules, with a per-recipient limit of one reply a day."""
    return Mailbox(tmp_path, engine, REPO / "rules", ReplyLimits(per_hour=1, per_day=1))


@pytest.fixture
def careless_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "careless-rules"
    rules.mkdir()
    shutil.copytree(REPO / "rules" / "lexicons", rules / "lexicons")
    shutil.copy(REPO / "rules" / "orders.toml", rules / "orders.toml")
    shutil.copy(REPO / "rules" / "scripts.toml", rules / "scripts.toml")
    shutil.copy(EML / "answer-everything.toml", rules / "routing.toml")
    return rules


@pytest.fixture
def careless(tmp_path: Path, engine: Engine, careless_rules: Path) -> Mailbox:
    """Rules that answer everything; generous limits, so only the guard under test can refuse."""
    return Mailbox(tmp_path, engine, careless_rules, ReplyLimits(per_hour=100, per_day=100))


# -- the rate limit counts the address the reply goes to ---------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [ReplyLimits(per_hour=1, per_day=100), ReplyLimits(per_hour=100, per_day=1)],
    ids=["hour", "day"],
)
def test_the_rate_limit_stops_the_second_reply_to_the_same_buyer(
    shipped: Mailbox, limits: ReplyLimits
) -> None:
    shipped.intake.limits = limits
    shipped.deliver(request(1, "Maria <maria@andes.example>"), request(2, "Maria <maria@andes.example>"))
    shipped.poll()
    assert shipped.replies_to() == ["maria@andes.example"]


def test_the_rate_limit_counts_the_reply_to_address_not_the_senders(shipped: Mailbox) -> None:
    shipped.deliver(
        request(1, "Ana <ana@andes.example>", "Reply-To: orders@andes.example"),
        request(2, "Luis <luis@andes.example>", "Reply-To: orders@andes.example"),
    )
    shipped.poll()
    assert shipped.replies_to() == ["orders@andes.example"]


def test_eight_senders_naming_one_victim_in_reply_to_never_reach_the_victim(shipped: Mailbox) -> None:
    shipped.deliver(
        *(
            request(n, f"Sender {n} <s{n}@domain{n}.example>", "Reply-To: victim@victim.example")
            for n in range(8)
        )
    )
    shipped.poll()
    replies = shipped.replies_to()
    assert "victim@victim.example" not in replies
    assert sorted(replies) == sorted(f"s{n}@domain{n}.example" for n in range(8))


def test_an_auto_responder_that_sets_reply_to_gets_one_reply_however_often_it_writes(
    shipped: Mailbox,
) -> None:
    bot = "Responder <bot@responder.example>"
    for n in range(4):  # four polls, as the worker would run them
        shipped.deliver(request(n, bot, "Reply-To: desk@elsewhere.example"))
        shipped.poll()
    assert shipped.replies_to() == ["bot@responder.example"]


# -- suppression after a permanent bounce of our reply ------------------------------------------------


def test_a_bounce_of_our_reply_lands_on_its_case_and_the_address_gets_no_more_replies(
    shipped: Mailbox,
) -> None:
    shipped.intake.limits = ReplyLimits(per_hour=100, per_day=100)  # only the suppression may refuse
    shipped.deliver(request(1, "Maria <maria@andes.example>"))
    shipped.poll()
    with Session(shipped.engine) as session:
        reply = session.exec(select(OutboxItem)).one()
        case_id = reply.case_id
        message_id = reply.message_id
    dsn = (EML / "dsn-of-our-reply.eml").read_text()
    shipped.deliver(
        dsn.replace("{RCPT}", "maria@andes.example")
        .replace("{MSGID}", message_id)
        .replace("{REF}", "X")
        .encode()
    )

    shipped.poll()

    (bounced,) = shipped.events("reply_bounced")
    assert bounced.startswith("our reply to maria@andes.example bounced: smtp; 550 5.1.1")
    with Session(shipped.engine) as session:
        event = session.exec(select(CaseEvent).where(CaseEvent.kind == "reply_bounced")).one()
        assert event.case_id == case_id
        assert session.get(Suppression, "maria@andes.example") is not None

    shipped.deliver(request(3, "Maria <maria@andes.example>"))
    shipped.poll()
    assert shipped.replies_to() == ["maria@andes.example"]  # still only the first one
    assert any("bounced permanently" in summary for summary in shipped.events("reply_blocked"))


def test_a_bounce_of_mail_we_never_sent_suppresses_nobody(shipped: Mailbox) -> None:
    dsn = (EML / "dsn-of-our-reply.eml").read_text()
    shipped.deliver(
        dsn.replace("{RCPT}", "maria@andes.example")
        .replace("{MSGID}", "forged@elsewhere.example")
        .replace("{REF}", "X")
        .encode()
    )
    shipped.poll()
    with Session(shipped.engine) as session:
        assert session.exec(select(Suppression)).all() == []
    assert shipped.events("reply_bounced") == []


# -- machines, own addresses, invalid recipients, the ceiling -------------------------------------------


def test_rules_that_answer_everything_still_never_answer_a_machine(careless: Mailbox) -> None:
    careless.deliver((EML / "out-of-office-bot.eml").read_bytes())
    careless.deliver(request(1, "Buyer <buyer@shop.example>"))  # the rules do answer people
    careless.poll()
    assert careless.replies_to() == ["buyer@shop.example"]


def test_a_reply_to_our_own_mailbox_is_refused(careless: Mailbox) -> None:
    careless.deliver(
        request(1, "Colleague <colleague@support.example.test>", "Reply-To: ta-pm@support.example.test")
    )
    careless.poll()
    assert careless.replies_to() == []
    (blocked,) = careless.events("reply_blocked")
    assert "one of our own mailboxes" in blocked


@pytest.mark.parametrize(
    "sender",
    [
        "Bob <Sales> <bob@buyer.example>",
        "=?utf-8?q?Bob=0D=0A_victim@example.com?= <bob@buyer.example>",
        "=?utf-8?q?x=0D=0A?= <_victim@example.com?=>",
        "sales",
    ],
)
def test_a_mail_without_one_valid_address_gets_no_reply_and_its_case_says_why(
    careless: Mailbox, sender: str
) -> None:
    careless.deliver(request(1, sender))
    careless.poll()
    assert careless.replies_to() == []
    (blocked,) = careless.events("reply_blocked")
    assert blocked.startswith("no reply: no valid address to reply to")
    with Session(careless.engine) as session:
        decision = session.exec(select(MailRecord.decision)).one()
    assert decision["reply_block"]["guard"] == "recipient"
    assert any(step["rule"] == "reply guard" and step["hit"] for step in decision["trace"])


def test_the_global_ceiling_stops_automatic_replies_and_raises_the_alert_once(
    careless: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    careless.intake.limits = ReplyLimits(per_hour=100, per_day=100, total_per_hour=3)
    careless.deliver(*(request(n, f"Buyer {n} <b{n}@shop{n}.example>") for n in range(5)))

    with caplog.at_level(logging.ERROR, logger="mailbot.ingest"):
        careless.poll()
        careless.deliver(request(9, "Buyer 9 <b9@shop9.example>"))
        careless.poll()

    assert len(careless.replies_to()) == 3
    assert len(careless.events(guards.CEILING_EVENT)) == 1
    assert len([r for r in caplog.records if "automatic replies stopped" in r.message]) == 1
    with Session(careless.engine) as session:
        assert guards.last_ceiling_alert(session, datetime(2000, 1, 1, tzinfo=UTC)) is not None


def test_a_bounce_naming_only_the_case_reference_lands_on_that_case(shipped: Mailbox) -> None:
    shipped.deliver(request(1, "Maria <maria@andes.example>"))
    shipped.poll()
    with Session(shipped.engine) as session:
        reply = session.exec(select(OutboxItem)).one()
        case_ref = session.exec(select(Case.ref).where(Case.id == reply.case_id)).one()
    dsn = (EML / "dsn-of-our-reply.eml").read_text()
    shipped.deliver(
        dsn.replace("{RCPT}", "maria@andes.example")
        .replace("{MSGID}", "lost-id@relay.example")
        .replace("{REF}", case_ref)
        .encode()
    )

    shipped.poll()

    with Session(shipped.engine) as session:
        event = session.exec(select(CaseEvent).where(CaseEvent.kind == "reply_bounced")).one()
        assert event.case_id == reply.case_id
        assert session.get(Suppression, "maria@andes.example") is not None
