"""Due times: counted in working hours from when a case opened; the overdue stand out and are listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlmodel import select

from mailbot.cli import main
from mailbot.core.working_hours import working_time_between
from mailbot.services import casework, casework_view
from mailbot.services.due_times import due_at_for, due_state, fill_due_times, overdue_cases
from mailbot.settings_due import DueSettings
from mailbot.store.db import session_scope
from mailbot.store.tables import Case

from .installation import REPO, Installation

EML = REPO / "tests" / "eml" / "due"
POLICY = DueSettings(policy={"*": {"low": 40, "normal": 8, "high": 4, "urgent": 2}}, due_soon_hours=2)


def opened(installation: Installation, name: str = "due-first.eml") -> str:
    installation.deliver("pm", (EML / name).read_bytes())
    (ref,) = installation.poll()
    return ref


def stored(installation: Installation, ref: str) -> Case:
    with session_scope(installation.engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        session.expunge(case)
        return case


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def backdate_due(installation: Installation, ref: str, due_at: datetime) -> None:
    with session_scope(installation.engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        case.due_at = due_at
        session.add(case)


def test_a_new_case_is_given_a_due_time_in_working_hours_of_its_policy(installation: Installation) -> None:
    ref = opened(installation)
    assert fill_due_times(installation.engine, POLICY) == 1
    case = stored(installation, ref)
    assert case.due_at is not None
    allowed = POLICY.hours_for(case.category, case.priority)
    counted = working_time_between(aware(case.created_at), aware(case.due_at), POLICY.calendar())
    assert counted == timedelta(hours=allowed)
    assert aware(case.due_at).weekday() < 5


def test_filling_due_times_twice_changes_nothing(installation: Installation) -> None:
    ref = opened(installation)
    fill_due_times(installation.engine, POLICY)
    first = stored(installation, ref).due_at
    assert fill_due_times(installation.engine, POLICY) == 0
    assert stored(installation, ref).due_at == first


def test_overdue_cases_are_listed_most_overdue_first(installation: Installation) -> None:
    first, second = opened(installation, "due-first.eml"), opened(installation, "due-other-buyer.eml")
    fill_due_times(installation.engine, POLICY)
    now = datetime(2027, 3, 2, 12, tzinfo=UTC)
    backdate_due(installation, first, now - timedelta(days=1))
    backdate_due(installation, second, now - timedelta(days=3))
    listed = overdue_cases(installation.engine, POLICY, clock=lambda: now)
    assert [c.ref for c in listed] == [second, first]
    assert all(c.due.state == "overdue" and c.due.label.startswith("overdue by") for c in listed)


def test_a_case_waiting_on_the_buyer_is_never_overdue(installation: Installation) -> None:
    ref = opened(installation)
    fill_due_times(installation.engine, POLICY)
    now = datetime(2027, 3, 2, 12, tzinfo=UTC)
    backdate_due(installation, ref, now - timedelta(days=1))
    casework.set_status(installation.engine, ref, "waiting", by="ana@support.example")
    assert overdue_cases(installation.engine, POLICY, clock=lambda: now) == ()
    assert due_state(now - timedelta(days=1), "waiting", now, POLICY).state == "none"


def test_a_case_within_the_warning_is_due_soon() -> None:
    now = datetime(2026, 12, 7, 10, tzinfo=UTC)  # a Monday
    assert due_state(now + timedelta(hours=1), "open", now, POLICY).state == "soon"
    assert due_state(now + timedelta(hours=5), "open", now, POLICY).state == "later"
    # Friday 16:00 to Monday 10:00 is two working hours: due soon, though three days away.
    friday = datetime(2026, 12, 4, 16, tzinfo=UTC)
    assert due_state(datetime(2026, 12, 7, 10, tzinfo=UTC), "new", friday, POLICY).state == "soon"


def test_the_queue_filters_overdue_and_shows_the_due_time(installation: Installation) -> None:
    late, fresh = opened(installation, "due-first.eml"), opened(installation, "due-other-buyer.eml")
    fill_due_times(installation.engine, POLICY)
    backdate_due(installation, late, datetime(2026, 1, 5, 12, tzinfo=UTC))
    page = casework_view.queue_page(installation.engine, casework_view.QueueFilters(due="overdue"))
    assert [c.ref for c in page.cases] == [late]
    everything = casework_view.queue_page(installation.engine, casework_view.QueueFilters())
    due_of = {c.ref: c.due_at for c in everything.cases}
    assert due_of[fresh] is not None and aware(due_of[late]) == datetime(2026, 1, 5, 12, tzinfo=UTC)


def test_cases_list_overdue_prints_the_overdue_cases(installation: Installation) -> None:
    late, fresh = opened(installation, "due-first.eml"), opened(installation, "due-other-buyer.eml")
    runner = CliRunner()
    config = ["--config", str(installation.config)]
    assert runner.invoke(main, [*config, "cases", "list", "--overdue"]).output.strip() == "no overdue cases"
    backdate_due(installation, late, datetime(2026, 1, 5, 12, tzinfo=UTC))
    done = runner.invoke(main, [*config, "cases", "list", "--overdue"])
    assert done.exit_code == 0, done.output
    assert late in done.output and "overdue by" in done.output and fresh not in done.output


def test_a_category_change_recomputes_the_due_time_from_the_new_categorys_policy(
    installation: Installation,
) -> None:
    ref = opened(installation)
    before = stored(installation, ref)
    policy = DueSettings(
        policy={"*": {"normal": 16, "high": 16}, "report_dispute": {"normal": 2, "high": 2}}
    )
    fill_due_times(installation.engine, policy)
    assert before.category != "report_dispute"
    first = stored(installation, ref).due_at
    casework.recategorize(installation.engine, ref, "category", "report_dispute", by="sup@support.example")
    assert fill_due_times(installation.engine, policy) == 1
    case = stored(installation, ref)
    assert case.due_at is not None and first is not None
    assert aware(case.due_at) == due_at_for(case.created_at, "report_dispute", case.priority, policy)
    counted = working_time_between(aware(case.created_at), aware(case.due_at), policy.calendar())
    assert counted == timedelta(hours=2) and aware(case.due_at) < aware(first)


def test_the_buyers_answer_to_a_waiting_case_restarts_its_due_time_from_that_answer(
    installation: Installation,
) -> None:
    ref = opened(installation)
    fill_due_times(installation.engine, POLICY)
    backdate_due(installation, ref, datetime(2026, 1, 5, 9, tzinfo=UTC))  # long overdue before waiting
    casework.set_status(installation.engine, ref, "waiting", by="ana@support.example")
    answer = (EML / "due-answer.eml").read_bytes().replace(b"REF000", ref.encode())
    installation.deliver("pm", answer)
    installation.poll()
    case = stored(installation, ref)
    assert case.status == "open" and case.due_at is None and case.owed_since is not None
    assert fill_due_times(installation.engine, POLICY) == 1
    case = stored(installation, ref)
    assert case.due_at is not None
    assert aware(case.due_at) == due_at_for(case.owed_since, case.category, case.priority, POLICY)
    assert aware(case.due_at) > aware(case.owed_since) > aware(case.created_at)
