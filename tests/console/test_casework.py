"""Case work as services: statuses, assignment, notes and corrections, each an audit event naming who."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.cli import main
from mailbot.services import casework, casework_view, search_index
from mailbot.services.corrections import ExportError, export_corrections

from .installation import REPO, Installation

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return AT


def opened(installation: Installation, name: str = "console-photo.eml") -> str:
    installation.deliver_file("pm", name)
    refs = installation.poll()
    assert len(refs) == 1
    return refs[0]


def test_setting_a_status_records_who_and_when(installation: Installation) -> None:
    ref = opened(installation)
    casework.set_status(installation.engine, ref, "waiting", by="ana@support.example", clock=clock)
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    assert view.case.status == "waiting"
    event = view.events[-1]
    assert (event.kind, event.by, event.at.replace(tzinfo=UTC)) == ("status", "ana@support.example", AT)
    assert "waiting on buyer" in event.summary


def test_an_unknown_status_is_refused_in_one_line(installation: Installation) -> None:
    ref = opened(installation)
    with pytest.raises(casework.CaseworkError, match="unknown status 'done'"):
        casework.set_status(installation.engine, ref, "done", by="ana@support.example")


def test_an_unknown_case_is_refused(installation: Installation) -> None:
    with pytest.raises(casework.CaseworkError, match="no case ZZZZZZ"):
        casework.add_note(installation.engine, "ZZZZZZ", "hello", by="ana@support.example")


def test_assigning_a_new_case_opens_it_and_unassigning_keeps_the_status(installation: Installation) -> None:
    ref = opened(installation)
    installation.user("ana@support.example")
    casework.assign(installation.engine, ref, "ANA@support.example", by="lead@support.example")
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.case.assignee == "ana@support.example"
    assert view.case.status == "open"
    casework.assign(installation.engine, ref, None, by="lead@support.example")
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.case.assignee is None and view.case.status == "open"
    assert [e.kind for e in view.events[-2:]] == ["assigned", "assigned"]


def test_a_case_cannot_be_assigned_to_someone_without_an_account(installation: Installation) -> None:
    ref = opened(installation)
    with pytest.raises(casework.CaseworkError, match="no staff account"):
        casework.assign(installation.engine, ref, "stranger@example.com", by="lead@support.example")


def test_a_note_is_kept_on_the_case_and_never_becomes_a_reply(installation: Installation) -> None:
    ref = opened(installation)
    before = casework_view.case_view(installation.engine, ref)
    assert before is not None
    casework.add_note(installation.engine, ref, "  Called the supplier.  ", by="ana@support.example")
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    assert [(n.author, n.body) for n in view.notes] == [("ana@support.example", "Called the supplier.")]
    assert len([m for m in view.thread if m.direction == "out"]) == len(
        [m for m in before.thread if m.direction == "out"]
    )


def test_the_thread_shows_the_new_text_first_and_the_quoted_history_apart(installation: Installation) -> None:
    ref = opened(installation)
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    first = view.thread[0]
    assert first.direction == "in"
    assert first.new_text.startswith("Hello,")
    assert "cartons left the factory" not in first.new_text
    assert "cartons left the factory" in first.quoted_text
    assert [(a.filename, a.content_type, a.previewable) for a in first.attachments] == [
        ("cartons.png", "image/png", True)
    ]


def test_an_attachment_is_found_only_through_its_own_case(installation: Installation) -> None:
    ref = opened(installation)
    other = opened(installation, "console-xss.eml")
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.thread[0].mail_id is not None
    mail_id = view.thread[0].mail_id
    found = casework_view.attachment(installation.engine, ref, mail_id, 0)
    assert found is not None and found.data.startswith(b"\x89PNG")
    assert casework_view.attachment(installation.engine, other, mail_id, 0) is None
    assert casework_view.attachment(installation.engine, ref, mail_id, 5) is None


def test_the_queue_finds_a_case_by_order_number_written_with_spaces(installation: Installation) -> None:
    ref = opened(installation)
    opened(installation, "console-xss.eml")
    page = casework_view.queue_page(
        installation.engine, casework_view.QueueFilters(search="3909 7978 1569 0838")
    )
    assert page.searched_as == "order number"
    assert [c.ref for c in page.cases] == [ref]


def test_the_queue_counts_cases_per_status_under_the_other_filters(installation: Installation) -> None:
    ref = opened(installation)
    opened(installation, "console-xss.eml")
    casework.set_status(installation.engine, ref, "waiting", by="ana@support.example")
    page = casework_view.queue_page(installation.engine, casework_view.QueueFilters(status="waiting"))
    counts = dict(page.counts)
    assert [c.ref for c in page.cases] == [ref]
    assert counts["waiting"] == 1 and sum(counts.values()) == 2


def test_keyset_pages_cover_the_queue_without_repeats(installation: Installation) -> None:
    installation.deliver_file("pm", "console-photo.eml")
    raw = (Path(__file__).parents[1] / "eml" / "console" / "console-photo.eml").read_bytes()
    for n in range(5):
        installation.deliver(
            "inspection",
            raw.replace(b"console-photo-01@", f"console-photo-page-{n}@".encode())
            .replace(b"3909797815690838", f"39097978156908{n}0".encode())
            .replace(b"maria.lopez@", f"buyer{n}@".encode()),
        )
    installation.poll()
    seen: list[str] = []
    after = None
    while True:
        page = casework_view.queue_page(installation.engine, casework_view.QueueFilters(after=after), limit=2)
        seen.extend(c.ref for c in page.cases)
        if page.next_after is None:
            break
        after = page.next_after
    everything = casework_view.queue_page(installation.engine, casework_view.QueueFilters(), limit=100)
    assert seen == [c.ref for c in everything.cases]
    assert len(set(seen)) == len(seen) >= 6


def test_a_correction_is_kept_with_what_mailbot_said(installation: Installation) -> None:
    ref = opened(installation)
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    said = view.case.category
    casework.recategorize(installation.engine, ref, "category", "report_dispute", by="sup@support.example")
    casework.recategorize(installation.engine, ref, "intent", "report_dispute", by="sup@support.example")
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    assert view.case.category == "report_dispute" and view.intent == "report_dispute"
    corrected = [e for e in view.events if e.kind == "corrected"]
    assert len(corrected) == 2 and all(e.by == "sup@support.example" for e in corrected)
    assert f"category {said} → report_dispute" in corrected[0].summary


def test_an_unknown_intent_is_refused(installation: Installation) -> None:
    ref = opened(installation)
    with pytest.raises(casework.CaseworkError, match="unknown intent 'angry'"):
        casework.recategorize(installation.engine, ref, "intent", "angry", by="sup@support.example")


def test_exported_corrections_are_read_by_mailbot_eval(installation: Installation, tmp_path: Path) -> None:
    ref = opened(installation)
    casework.recategorize(installation.engine, ref, "intent", "report_dispute", by="sup@support.example")
    out = tmp_path / "corrections"
    report = export_corrections(installation.engine, out)
    assert (report.messages, report.corrections) == (1, 1)
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert labels[0]["intent"] == "report_dispute"
    assert labels[0]["mailbot_said"]["intent"] == "cancellation"
    assert b"console-photo-01@andes-buyer.example" in (out / labels[0]["file"]).read_bytes()
    result = CliRunner().invoke(main, ["eval", str(out), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["n"] == 1
    # mailbot still reads it as a cancellation: the export is exactly the mistake staff corrected
    assert figures["intent_accuracy"] == 0.0


def test_an_export_never_mixes_with_an_earlier_one(installation: Installation, tmp_path: Path) -> None:
    ref = opened(installation)
    casework.recategorize(installation.engine, ref, "intent", "report_dispute", by="sup@support.example")
    export_corrections(installation.engine, tmp_path / "out")
    with pytest.raises(ExportError, match="already holds an export"):
        export_corrections(installation.engine, tmp_path / "out")


def test_the_cli_works_a_case_for_scripts(installation: Installation) -> None:
    ref = opened(installation)
    installation.user("ana@support.example")
    runner = CliRunner()
    config = ["--config", str(installation.config)]
    steps = [
        ["cases", "assign", ref, "ana@support.example", "--by", "lead@support.example"],
        ["cases", "status", ref, "waiting", "--by", "ana@support.example"],
        ["cases", "note", ref, "asked the buyer for the PI", "--by", "ana@support.example"],
        ["cases", "recategorize", ref, "--category", "report_dispute", "--by", "sup@support.example"],
    ]
    for step in steps:
        result = runner.invoke(main, [*config, *step])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"{ref}: ")
    refused = runner.invoke(main, [*config, "cases", "status", ref, "waiting"])
    assert refused.exit_code == 1
    assert refused.output.strip() == f"error: case {ref} is already waiting on buyer"
    export = installation.root / "export"
    result = runner.invoke(main, [*config, "corrections", "export", str(export)])
    assert result.exit_code == 0, result.output
    assert (export / "labels.jsonl").is_file()


def test_the_decision_is_explained_in_plain_words(installation: Installation) -> None:
    ref = opened(installation)
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None
    text = "\n".join(view.explanation)
    assert "Filed as cancellation" in text
    assert "Order number 3909797815690838 (found in the new text)" in text
    assert "Language: en." in text
    assert "Answered automatically with the template" in text


def test_a_resolved_case_closes_itself_after_the_configured_days(installation: Installation) -> None:
    ref = opened(installation)
    casework.set_status(installation.engine, ref, "resolved", by="ana@support.example", clock=clock)
    assert (
        casework.close_resolved(installation.engine, timedelta(days=7), clock=lambda: AT + timedelta(days=6))
        == ()
    )
    closed = casework.close_resolved(
        installation.engine, timedelta(days=7), clock=lambda: AT + timedelta(days=8)
    )
    assert closed == (ref,)
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.case.status == "closed"
    assert view.events[-1].by == "mailbot"


def test_a_case_reopened_before_the_deadline_is_not_closed(installation: Installation) -> None:
    ref = opened(installation)
    casework.set_status(installation.engine, ref, "resolved", by="ana@support.example", clock=clock)
    casework.set_status(installation.engine, ref, "open", by="ana@support.example", clock=clock)
    assert (
        casework.close_resolved(installation.engine, timedelta(days=7), clock=lambda: AT + timedelta(days=30))
        == ()
    )


def test_status_counts_stop_past_the_cap(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> None:
    opened(installation)
    opened(installation, "console-xss.eml")
    monkeypatch.setattr(casework_view, "COUNT_CAP", 1)
    counts = dict(casework_view.queue_page(installation.engine, casework_view.QueueFilters()).counts)
    assert counts["new"] == 2  # COUNT_CAP + 1: shown as "1+" (mail opens cases as "new")
    assert counts["closed"] == 0


def test_words_of_the_mail_find_its_case_once_indexed(installation: Installation) -> None:
    ref = opened(installation)
    opened(installation, "console-xss.eml")
    words = casework_view.QueueFilters(search="supplier SHIPPED")
    assert casework_view.queue_page(installation.engine, words).cases == ()  # not indexed yet
    assert search_index.index_all(installation.engine) == 2
    page = casework_view.queue_page(installation.engine, words)
    assert page.searched_as == "words"
    assert [c.ref for c in page.cases] == [ref]
    by_attachment = casework_view.QueueFilters(search="cartons.png")
    assert [c.ref for c in casework_view.queue_page(installation.engine, by_attachment).cases] == [ref]
    assert search_index.index_pending(installation.engine) == 0


@pytest.mark.parametrize("words", ['"unbalanced', "OR AND NOT", "a* NEAR(b)", "x:y -z", "(((", "';--"])
def test_search_syntax_typed_by_staff_is_searched_as_plain_words(
    installation: Installation, words: str
) -> None:
    opened(installation)
    search_index.index_all(installation.engine)
    page = casework_view.queue_page(installation.engine, casework_view.QueueFilters(search=words))
    assert page.cases == ()


def test_the_text_of_a_forwarded_mail_is_searchable_with_the_rule_sets_forward_prefixes(
    installation: Installation,
) -> None:
    ref = opened(installation, "console-forward.eml")
    words = casework_view.QueueFilters(search="Zhoushan ferry")
    search_index.index_all(installation.engine, subjects=search_index.subject_prefixes(REPO / "rules"))
    assert [c.ref for c in casework_view.queue_page(installation.engine, words).cases] == [ref]
