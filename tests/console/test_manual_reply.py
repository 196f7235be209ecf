"""Staff replies through the outbox: free text or a template, quoted, attached, refused when they must be."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailbot.core.replies import ReplyAttachment
from mailbot.services import casework_view, manual_reply
from mailbot.services.manual_reply import ReplyRefused, ReplyRequest, ReplySetup
from mailbot.store import guards, repo
from mailbot.store.db import session_scope
from mailbot.store.tables import CaseEvent, OutboxItem

from .installation import Installation

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ANA = "ana@support.example"


def clock() -> datetime:
    return AT


def opened(installation: Installation, name: str, folder: str = "reply") -> str:
    raw = (Path(__file__).resolve().parents[1] / "eml" / folder / name).read_bytes()
    installation.deliver("pm", raw)
    refs = installation.poll()
    assert len(refs) == 1
    return refs[0]


def setup_of(installation: Installation) -> ReplySetup:
    return manual_reply.setup_from_settings(installation.runtime.settings)


def queued(installation: Installation, message_id: str) -> Message:
    with Session(installation.engine) as session:
        rows = session.exec(select(OutboxItem).where(OutboxItem.message_id == message_id)).all()
    assert len(rows) == 1
    return email.message_from_bytes(rows[0].raw)


def body_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8").replace("\r\n", "\n")


def test_a_free_text_reply_is_queued_threaded_quoted_and_audited(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    request = ReplyRequest(ref=ref, text="Hello Jonas,\nwe are checking the carton count.", token="t1")
    result = manual_reply.send(installation.engine, setup_of(installation), request, by=ANA, clock=clock)
    message = queued(installation, result.message_id)
    assert message["To"] == "jonas.weber@nordlicht-buyer.example"
    assert message["In-Reply-To"] == "<reply-question-01@nordlicht-buyer.example>"
    assert "<reply-question-01@nordlicht-buyer.example>" in message["References"]
    assert f"[Case #{ref}]" in message["Subject"]
    assert message["Auto-Submitted"] is None  # a person wrote it
    body = body_of(message)
    assert body.startswith("Hello Jonas,\nwe are checking the carton count.")
    assert "> 240517893301234567. Die Anzahl der Kartons stimmt nicht mit der PI überein." in body
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    event = next(e for e in view.events if e.kind == "reply_manual")
    assert (event.by, event.at.replace(tzinfo=UTC)) == (ANA, AT)
    assert view.thread[-1].direction == "out" and view.thread[-1].delivery == "pending"


def test_a_template_reply_is_filled_with_the_case_facts_in_the_chosen_language(
    installation: Installation,
) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    german = manual_reply.preview(
        installation.engine, setup, ReplyRequest(ref=ref, template="report_dispute_received")
    )
    assert german.language == "de" and german.refusal is None
    assert "240517893301234567" in german.body and ref in german.body
    request = ReplyRequest(ref=ref, template="report_dispute_received", language="en", token="t2")
    result = manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock)
    message = queued(installation, result.message_id)
    assert message["Content-Language"] == "en"
    body = body_of(message)
    assert "240517893301234567" in body and body != german.body
    assert "> Können Sie das bitte prüfen?" in body


def test_the_same_form_sent_twice_queues_one_reply(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    request = ReplyRequest(ref=ref, text="We are on it.", token="same-form")
    first = manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock)
    second = manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock)
    assert (first.already, second.already) == (False, True)
    assert first.message_id == second.message_id
    queued(installation, first.message_id)  # exactly one row


def test_attachments_go_along_up_to_ten_megabytes_together(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    photo = ReplyAttachment("../../etc/carton\r\nlabel.png", "image/png", b"\x89PNG fake")
    request = ReplyRequest(ref=ref, text="The label is attached.", token="t3", attachments=(photo,))
    result = manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock)
    parts = [p for p in queued(installation, result.message_id).walk() if p.get_filename()]
    assert [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in parts] == [
        ("carton label.png", "image/png", b"\x89PNG fake")
    ]
    too_big = (
        ReplyAttachment("a.pdf", "application/pdf", b"x" * (6 * 1024 * 1024)),
        ReplyAttachment("b.pdf", "application/pdf", b"x" * (5 * 1024 * 1024)),
    )
    with pytest.raises(ReplyRefused, match=r"11\.0 MB together; at most 10 MB"):
        manual_reply.send(
            installation.engine,
            setup,
            ReplyRequest(ref=ref, text="Two reports.", token="t4", attachments=too_big),
            by=ANA,
        )


def test_a_reply_to_an_address_that_is_not_one_valid_address_is_refused(installation: Installation) -> None:
    ref = opened(installation, "reply-two-senders.eml")
    setup = setup_of(installation)
    draft = manual_reply.preview(installation.engine, setup, ReplyRequest(ref=ref, text="Hello"))
    assert draft.refusal is not None and "no valid address to reply to" in draft.refusal
    with pytest.raises(
        ReplyRefused, match="not sent: no valid address to reply to: From address 'sales': has no domain"
    ):
        manual_reply.send(installation.engine, setup, ReplyRequest(ref=ref, text="Hello", token="t5"), by=ANA)
    with Session(installation.engine) as session:
        assert session.exec(select(OutboxItem).where(OutboxItem.template.startswith("manual"))).all() == []


def test_a_reply_to_a_suppressed_address_is_refused_and_says_why(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    with session_scope(installation.engine) as session:
        repo.suppress(
            session, "jonas.weber@nordlicht-buyer.example", "hard bounce: 550 5.1.1 no such user", AT
        )
    setup = setup_of(installation)
    draft = manual_reply.preview(installation.engine, setup, ReplyRequest(ref=ref, text="Hello"))
    assert draft.refusal == (
        "jonas.weber@nordlicht-buyer.example is suppressed (hard bounce: 550 5.1.1 no such user); "
        "nothing more is sent to it"
    )
    with pytest.raises(ReplyRefused, match=r"not sent: jonas\.weber@nordlicht-buyer\.example is suppressed"):
        manual_reply.send(installation.engine, setup, ReplyRequest(ref=ref, text="Hello", token="t6"), by=ANA)


def test_staff_replies_are_not_held_by_the_hourly_rate_limit(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    for n in range(7):  # the automatic limit is 5 an hour per recipient
        request = ReplyRequest(ref=ref, text=f"Update {n}", token=f"rate-{n}")
        assert not manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock).already


def test_staff_replies_do_not_use_up_the_buyers_automatic_replies(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    results = [
        manual_reply.send(
            installation.engine, setup, ReplyRequest(ref=ref, text=f"Update {n}", token=f"count-{n}"), by=ANA
        )
        for n in range(3)
    ]
    now = datetime.now(UTC)
    with Session(installation.engine) as session:
        staff = session.exec(select(OutboxItem).where(OutboxItem.message_id == results[0].message_id)).one()
        automatic = session.exec(select(OutboxItem).where(OutboxItem.rcpt_to == staff.rcpt_to)).all()
        expected = sum(1 for row in automatic if not row.template.startswith("manual"))
        history = guards.recipient_history(session, staff.rcpt_to, now)
        total = guards.replies_last_hour(session, now)
    assert history.replies_last_hour == expected
    assert total == expected


def test_a_macro_replies_with_its_template_and_sets_its_status(installation: Installation) -> None:
    ref = opened(installation, "reply-question.eml")
    setup = setup_of(installation)
    found = manual_reply.macro(setup, "ask_for_order_number")
    assert (found.template, found.status) == ("order_number_missing", "waiting")
    request = ReplyRequest(ref=ref, template=found.template, status=found.status, token="t7")
    result = manual_reply.send(installation.engine, setup, request, by=ANA, clock=clock)
    assert "waiting on buyer" in result.summary
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.case.status == "waiting"
    with Session(installation.engine) as session:
        kinds = [e.kind for e in session.exec(select(CaseEvent).where(CaseEvent.created_at == AT)).all()]
    assert kinds == ["reply_manual", "status"]


def test_a_broken_macro_file_is_named_with_its_line_and_left_out(
    installation: Installation, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "acknowledgement.txt.j2").write_text("Thanks {{ buyer_name }}\n", encoding="utf-8")
    (templates / "macros").mkdir()
    (templates / "macros" / "good.toml").write_text('label = "Thanks"\ntemplate = "acknowledgement"\n')
    (templates / "macros" / "bad.toml").write_text(
        'label = "Close"\ntemplate = "acknowledgement"\nstatus = "done"\n'
    )
    (templates / "macros" / "typo.toml").write_text('label = "X"\ntemplat = "acknowledgement"\n')
    assert manual_reply.check_macros(templates) == [
        f"{templates}/macros/bad.toml:3: unknown status 'done'; one of: open, waiting, resolved, closed",
        f"{templates}/macros/typo.toml:2: unknown key 'templat'; known: label, template, status",
        f"{templates}/macros/typo.toml: template is missing",
    ]
    setup = manual_reply.ReplySetup(
        identity=setup_of(installation).identity,
        mailboxes={},
        renderer=manual_reply.TemplateStore(templates),
        templates_dir=templates,
    )
    assert [m.name for m in manual_reply.macros(setup).macros] == ["good"]


def test_the_shipped_macros_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "templates"
    assert manual_reply.check_macros(root) == []


def test_rules_check_names_a_broken_macro_with_file_and_line(tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from mailbot.cli import main

    repo_root = Path(__file__).resolve().parents[2]
    templates = tmp_path / "templates"
    shutil.copytree(repo_root / "templates", templates)
    (templates / "macros" / "broken.toml").write_text('label = "Close it"\ntemplate = "closing_words"\n')
    result = CliRunner().invoke(
        main, ["rules", "check", str(repo_root / "rules"), "--templates-dir", str(templates)]
    )
    assert result.exit_code == 1
    assert f"{templates}/macros/broken.toml:2: no reply template 'closing_words'" in result.output
