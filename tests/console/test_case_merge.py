"""Merging two cases of one buyer and splitting a message off into a new case, as services and CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.cli import main
from mailbot.services import casework, casework_view
from mailbot.services.case_merge import merge_cases, split_message

from .installation import REPO, Installation

EML = REPO / "tests" / "eml" / "due"
AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def clock() -> datetime:
    return AT


def deliver(installation: Installation, *names: str) -> list[str]:
    for name in names:
        installation.deliver("pm", (EML / name).read_bytes())
        installation.poll()
    return [s.ref for s in casework_view.queue_page(installation.engine, casework_view.QueueFilters()).cases]


def view(installation: Installation, ref: str) -> casework_view.CaseView:
    found = casework_view.case_view(installation.engine, ref)
    assert found is not None
    return found


def test_merging_moves_messages_orders_and_notes_and_closes_the_source(installation: Installation) -> None:
    second, first = deliver(installation, "due-first.eml", "due-second.eml")
    casework.add_note(installation.engine, first, "called the buyer", by="ana@support.example")
    merge_cases(installation.engine, first, second, by="ana@support.example", clock=clock)
    target, source = view(installation, second), view(installation, first)
    assert len([e for e in target.thread if e.direction == "in"]) == 2
    assert set(target.case.orders) == {"111122223333444", "555566667777888"}
    assert [n.body for n in target.notes] == ["called the buyer"]
    assert source.case.status == "closed" and source.thread == ()


def test_a_merge_is_an_audit_event_on_both_cases_naming_who_and_when(installation: Installation) -> None:
    second, first = deliver(installation, "due-first.eml", "due-second.eml")
    merge_cases(installation.engine, first, second, by="ana@support.example", clock=clock)
    source_event = view(installation, first).events[-1]
    target_event = view(installation, second).events[-1]
    assert (source_event.kind, source_event.by, source_event.at.replace(tzinfo=UTC)) == (
        "merged",
        "ana@support.example",
        AT,
    )
    assert source_event.summary == f"merged into {second} by ana@support.example"
    assert target_event.kind == "merged" and first in target_event.summary


def test_cases_of_different_buyers_are_never_merged(installation: Installation) -> None:
    other, anna = deliver(installation, "due-first.eml", "due-other-buyer.eml")
    before = view(installation, anna).case.status
    with pytest.raises(casework.CaseworkError, match="belong to different buyers"):
        merge_cases(installation.engine, anna, other, by="ana@support.example")
    assert view(installation, anna).case.status == before != "closed"


def test_a_case_cannot_be_merged_into_itself(installation: Installation) -> None:
    (ref,) = deliver(installation, "due-first.eml")
    with pytest.raises(casework.CaseworkError, match="into itself"):
        merge_cases(installation.engine, ref, f"#{ref.lower()}", by="ana@support.example")


def test_splitting_moves_one_buyer_message_into_a_new_case_of_the_same_buyer(
    installation: Installation,
) -> None:
    refs = deliver(installation, "due-first.eml", "due-followup.eml")
    assert len(refs) == 1, "the follow-up joins the first case"
    (ref,) = refs
    follow_up = [e for e in view(installation, ref).thread if e.direction == "in"][-1]
    assert follow_up.mail_id is not None
    result = split_message(installation.engine, ref, follow_up.mail_id, by="ana@support.example", clock=clock)
    new, old = view(installation, result.new_ref), view(installation, ref)
    assert [e.mail_id for e in new.thread if e.direction == "in"] == [follow_up.mail_id]
    assert follow_up.mail_id not in [e.mail_id for e in old.thread]
    assert new.case.buyer == old.case.buyer == "anna@nordic-buyer.example"
    assert new.case.status == "new" and "111122223333444" in new.case.orders
    assert old.events[-1].kind == "split" and old.events[-1].by == "ana@support.example"
    assert new.events[-1].kind == "split" and ref in new.events[-1].summary


def test_the_only_message_of_a_case_is_not_split_off(installation: Installation) -> None:
    (ref,) = deliver(installation, "due-first.eml")
    (entry,) = [e for e in view(installation, ref).thread if e.direction == "in"]
    assert entry.mail_id is not None
    with pytest.raises(casework.CaseworkError, match="only buyer message"):
        split_message(installation.engine, ref, entry.mail_id, by="ana@support.example")


def test_a_message_of_another_case_is_refused(installation: Installation) -> None:
    second, first = deliver(installation, "due-first.eml", "due-second.eml")
    (entry,) = [e for e in view(installation, second).thread if e.direction == "in"]
    assert entry.mail_id is not None
    with pytest.raises(casework.CaseworkError, match=f"case {first} has no message {entry.mail_id}"):
        split_message(installation.engine, first, entry.mail_id, by="ana@support.example")


def test_the_cli_merges_and_refuses_in_one_line(installation: Installation, tmp_path: Path) -> None:
    second, first = deliver(installation, "due-first.eml", "due-second.eml")
    runner = CliRunner()
    config = ["--config", str(installation.config)]
    done = runner.invoke(main, [*config, "cases", "merge", first, second, "--by", "cli:ana"])
    assert done.exit_code == 0, done.output
    assert f"merged into {second} by cli:ana" in done.output
    again = runner.invoke(main, [*config, "cases", "merge", first, first])
    assert (
        again.exit_code == 1
        and again.output.strip() == "error: case " + first + " cannot be merged into itself"
    )


def test_a_case_already_merged_is_not_merged_again(installation: Installation) -> None:
    second, first = deliver(installation, "due-first.eml", "due-second.eml")
    merge_cases(installation.engine, first, second, by="ana@support.example")
    with pytest.raises(casework.CaseworkError, match=f"case {first} was already merged"):
        merge_cases(installation.engine, first, second, by="ana@support.example")
