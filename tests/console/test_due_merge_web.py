"""The console shows due times (overdue and due soon stand out), filters by them, merges and splits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from mailbot.services import casework_view
from mailbot.services.due_times import due_at_for
from mailbot.settings_due import DueSettings
from mailbot.store.db import session_scope
from mailbot.store.tables import Case
from mailbot.web.app import build_app

from .installation import REPO, Installation
from .test_web_http import csrf_of, sign_in

EML = REPO / "tests" / "eml" / "due"
POLICY = DueSettings(policy={"*": {"low": 40, "normal": 8, "high": 4, "urgent": 2}})


@pytest.fixture
def client(installation: Installation) -> Iterator[TestClient]:
    installation.user("ana@support.example")
    app = build_app(installation.engine, due=POLICY)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        sign_in(test_client, "ana@support.example")
        yield test_client


def deliver(installation: Installation, name: str) -> list[str]:
    installation.deliver("pm", (EML / name).read_bytes())
    return installation.poll()


def make_overdue(installation: Installation, ref: str) -> None:
    with session_scope(installation.engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        case.due_at = datetime(2026, 1, 5, 12, tzinfo=UTC)
        session.add(case)


def test_an_overdue_case_stands_out_in_the_queue_and_the_filter_finds_only_it(
    client: TestClient, installation: Installation
) -> None:
    (late,) = deliver(installation, "due-first.eml")
    (fresh,) = deliver(installation, "due-other-buyer.eml")
    client.get("/cases")  # the queue gives new cases their due time
    make_overdue(installation, late)
    page = client.get("/cases").text
    assert re.search(rf'<tr class="row due-overdue" data-href="/cases/{late}">', page)
    assert 'class="badge due-overdue">overdue by' in page
    only = client.get("/cases", params={"due": "overdue"}).text
    assert f"/cases/{late}" in only and f"/cases/{fresh}" not in only


def test_the_case_page_shows_the_due_time(client: TestClient, installation: Installation) -> None:
    (ref,) = deliver(installation, "due-first.eml")
    page = client.get(f"/cases/{ref}").text
    assert "<dt>Due</dt>" in page


def test_merging_from_the_case_page_lands_on_the_target(
    client: TestClient, installation: Installation
) -> None:
    (first,) = deliver(installation, "due-first.eml")
    (second,) = deliver(installation, "due-second.eml")
    page = client.get(f"/cases/{first}").text
    assert f"Merge this case into {second}" in page
    done = client.post(
        f"/cases/{first}/merge", data={"csrf_token": csrf_of(page), "target": second}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith(f"/cases/{second}?done=")
    view = casework_view.case_view(installation.engine, first)
    assert view is not None and view.case.status == "closed"


def test_a_merge_without_the_csrf_token_is_forbidden(client: TestClient, installation: Installation) -> None:
    (first,) = deliver(installation, "due-first.eml")
    (second,) = deliver(installation, "due-second.eml")
    assert client.post(f"/cases/{first}/merge", data={"target": second}).status_code == 403


def test_splitting_from_the_case_page_opens_the_new_case(
    client: TestClient, installation: Installation
) -> None:
    (ref,) = deliver(installation, "due-first.eml")
    deliver(installation, "due-followup.eml")
    page = client.get(f"/cases/{ref}").text
    mail_ids = re.findall(r'name="mail_id" value="(\d+)"', page)
    assert len(mail_ids) == 2
    done = client.post(
        f"/cases/{ref}/split",
        data={"csrf_token": csrf_of(page), "mail_id": mail_ids[-1]},
        follow_redirects=False,
    )
    location = done.headers["location"]
    assert done.status_code == 303 and not location.startswith(f"/cases/{ref}?")
    assert "split+off+from" not in location and "split" in location


def test_a_category_corrected_in_the_console_gets_the_due_time_of_its_policy(
    installation: Installation,
) -> None:
    policy = DueSettings(policy={"*": {"normal": 16, "high": 16}, "report_dispute": {"normal": 2, "high": 2}})
    (ref,) = deliver(installation, "due-first.eml")
    installation.user("sup@support.example", "supervisor")
    shown = re.compile(r'<dd class="due"><span class="mono">([^<]+) UTC</span>')
    with TestClient(build_app(installation.engine, due=policy), base_url="http://127.0.0.1") as client:
        sign_in(client, "sup@support.example")
        page = client.get(f"/cases/{ref}").text
        before = shown.search(page)
        done = client.post(
            f"/cases/{ref}/recategorize",
            data={"csrf_token": csrf_of(page), "field": "category", "value": "report_dispute"},
        )
        after = shown.search(done.text)
    with session_scope(installation.engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        expected = due_at_for(case.created_at, "report_dispute", case.priority, policy)
    assert before is not None and after is not None
    assert after.group(1) == expected.strftime("%Y-%m-%d %H:%M") != before.group(1)
