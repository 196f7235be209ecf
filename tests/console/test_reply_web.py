"""Replying from the console over HTTP, `mailbot cases reply`, and the delivery status of our replies."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select
from starlette.testclient import TestClient

from mailbot.cli import main
from mailbot.services import casework_view, manual_reply
from mailbot.services.manual_reply import ReplyRequest
from mailbot.store import repo
from mailbot.store.db import session_scope
from mailbot.store.tables import OutboxItem
from mailbot.web.app import build_app

from .installation import Installation
from .test_web_http import csrf_of, sign_in

EML = Path(__file__).resolve().parents[1] / "eml" / "reply"
TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def client(installation: Installation) -> Iterator[TestClient]:
    replies = manual_reply.setup_from_settings(installation.runtime.settings)
    with TestClient(
        build_app(installation.engine, replies=replies), base_url="http://127.0.0.1"
    ) as test_client:
        yield test_client


@pytest.fixture
def case_ref(installation: Installation) -> str:
    installation.deliver("pm", (EML / "reply-question.eml").read_bytes())
    return installation.poll()[0]


def manual_rows(installation: Installation) -> list[OutboxItem]:
    with Session(installation.engine) as session:
        return list(session.exec(select(OutboxItem).where(OutboxItem.template.startswith("manual"))).all())


def signed_in(client: TestClient, installation: Installation) -> None:
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")


def test_the_case_page_offers_the_reply_form_and_the_canned_responses(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    signed_in(client, installation)
    page = client.get(f"/cases/{case_ref}").text
    assert f'href="/cases/{case_ref}/reply"' in page
    assert "Cancellation received, waiting on buyer" in page
    form = client.get(f"/cases/{case_ref}/reply?macro=ask_for_order_number").text
    assert '<option value="order_number_missing" selected>' in form
    assert '<option value="waiting" selected>' in form


def test_a_previewed_reply_is_sent_once_with_an_attachment(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    signed_in(client, installation)
    form = client.get(f"/cases/{case_ref}/reply").text
    fields = {"csrf_token": csrf_of(form), "token": TOKEN.findall(form)[0], "language": "en", "status": ""}
    fields |= {"template": "", "text": "Dear Jonas, the corrected PI is attached."}
    preview = client.post(f"/cases/{case_ref}/reply/preview", data=fields)
    assert preview.status_code == 200
    shown = html.unescape(preview.text)
    assert "Dear Jonas, the corrected PI is attached." in shown and "> 240517893301234567." in shown
    assert 'id="reply-to">jonas.weber@nordlicht-buyer.example<' in shown
    files = {"attachments": ("pi.pdf", b"%PDF-1.4 fake", "application/pdf")}
    sent = client.post(f"/cases/{case_ref}/reply", data=fields, files=files, follow_redirects=False)
    assert sent.status_code == 303 and "reply+by+ana%40support.example" in sent.headers["location"]
    again = client.post(f"/cases/{case_ref}/reply", data=fields, files=files, follow_redirects=False)
    assert "already+queued" in again.headers["location"]
    rows = manual_rows(installation)
    assert len(rows) == 1 and b"filename*=utf-8''pi.pdf" in rows[0].raw


def test_the_form_says_why_a_suppressed_buyer_gets_no_reply(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    with session_scope(installation.engine) as session:
        repo.suppress(session, "jonas.weber@nordlicht-buyer.example", "hard bounce: 550 5.1.1 unknown user")
    signed_in(client, installation)
    form = client.get(f"/cases/{case_ref}/reply").text
    fields = {"csrf_token": csrf_of(form), "token": TOKEN.findall(form)[0], "text": "Hello", "template": ""}
    preview = html.unescape(client.post(f"/cases/{case_ref}/reply/preview", data=fields).text)
    assert "This reply cannot be sent: jonas.weber@nordlicht-buyer.example is suppressed" in preview
    assert 'action="/cases/' + case_ref + '/reply" enctype' not in preview  # no send button
    refused = client.post(f"/cases/{case_ref}/reply", data=fields)
    assert refused.status_code == 400 and "is suppressed" in html.unescape(refused.text)
    assert manual_rows(installation) == []


def test_a_reply_without_the_csrf_token_is_forbidden(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    signed_in(client, installation)
    response = client.post(f"/cases/{case_ref}/reply", data={"text": "Hello", "token": "x"})
    assert response.status_code == 403
    assert manual_rows(installation) == []


def test_an_upload_over_the_limit_is_refused_before_it_is_read(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    signed_in(client, installation)
    form = client.get(f"/cases/{case_ref}/reply").text
    fields = {"csrf_token": csrf_of(form), "token": TOKEN.findall(form)[0], "text": "Big", "template": ""}
    files = {"attachments": ("big.bin", b"x" * (12 * 1024 * 1024), "application/octet-stream")}
    response = client.post(f"/cases/{case_ref}/reply", data=fields, files=files)
    assert response.status_code == 413 and "larger than 10 MB together" in response.text
    assert manual_rows(installation) == []


def test_cases_reply_queues_a_template_reply_and_sets_the_status(
    installation: Installation, case_ref: str
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(installation.config),
            "cases",
            "reply",
            case_ref,
            "--template",
            "status_inquiry",
            "--language",
            "en",
            "--status",
            "waiting",
            "--by",
            "ana@support.example",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"{case_ref}: reply by ana@support.example (template status_inquiry, en)" in result.output
    view = casework_view.case_view(installation.engine, case_ref)
    assert view is not None and view.case.status == "waiting"
    assert [r.template for r in manual_rows(installation)] == ["manual:status_inquiry"]


def test_cases_reply_refuses_an_unreadable_text_file_in_one_line(
    installation: Installation, case_ref: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(installation.config),
            "cases",
            "reply",
            case_ref,
            "--text-file",
            str(tmp_path / "no.txt"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "no.txt: cannot be read" in result.output
    assert "Traceback" not in result.output


def test_a_bounce_of_a_reply_shows_on_that_reply(installation: Installation, case_ref: str) -> None:
    replies = manual_reply.setup_from_settings(installation.runtime.settings)
    request = ReplyRequest(ref=case_ref, text="Please check.", token="b1")
    manual_reply.send(installation.engine, replies, request, by="ana@support.example")
    with session_scope(installation.engine) as session:
        case = repo.case_by_ref(session, case_ref)
        assert case is not None
        repo.add_event(
            session,
            "reply_bounced",
            "our reply to jonas.weber@nordlicht-buyer.example bounced: smtp; 550 5.1.1 unknown (permanent)",
            case_id=case.id,
        )
    view = casework_view.case_view(installation.engine, case_ref)
    assert view is not None
    ours = [m for m in view.thread if m.direction == "out"]
    assert ours[-1].manual and ours[-1].delivery == "bounced"
    assert ours[-1].delivery_error == "smtp; 550 5.1.1 unknown (permanent)"
