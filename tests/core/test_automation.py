"""detect_automation: the loop-safety policy. Anything a machine wrote is recognised, with the reason."""

from __future__ import annotations

import dataclasses
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import routing_version
from mailbot.core.automation import MAX_SCAN_CHARS, check_names, detect_automation
from mailbot.core.errors import RuleFileError
from mailbot.core.parse import parse
from mailbot.core.types import AutomationKind, Identity, InboundMail

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES).automation
EML = Path(__file__).resolve().parents[1] / "eml"
US = Identity(
    addresses=frozenset({"ta-pm@support.example.test", "ta-inspection@support.example.test"}),
    message_id_domain="mailbot.example.test",
)


def mail(
    headers: dict[str, str] | None = None,
    body: str = "Please cancel the inspection for order 162534987612345.",
    subject: str = "Cancel inspection",
    sender: str = "Buyer <buyer@shop.example>",
) -> InboundMail:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = subject
    headers = {"Message-ID": "<m1@shop.example>", **(headers or {})}
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    return parse(message.as_bytes())


def kind_of(m: InboundMail) -> AutomationKind:
    return detect_automation(m, US, CONFIG).kind


def from_file(name: str) -> InboundMail:
    return parse((EML / name).read_bytes())


def test_a_plain_buyer_mail_is_human() -> None:
    verdict = detect_automation(mail(), US, CONFIG)
    assert verdict.kind is AutomationKind.HUMAN
    assert not verdict.is_machine


def test_auto_submitted_no_means_a_person() -> None:
    assert kind_of(from_file("automation-human-autosubmitted-no.eml")) is AutomationKind.HUMAN


@pytest.mark.parametrize(
    ("headers", "kind", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, AutomationKind.AUTO_REPLY, "Auto-Submitted: auto-replied"),
        (
            {"Auto-Submitted": "auto-generated"},
            AutomationKind.AUTO_GENERATED,
            "Auto-Submitted: auto-generated",
        ),
        ({"Auto-Submitted": "auto-notified"}, AutomationKind.AUTO_GENERATED, "Auto-Submitted: auto-notified"),
        ({"X-Autoreply": "yes"}, AutomationKind.AUTO_REPLY, "X-Autoreply: yes"),
        ({"Precedence": "bulk"}, AutomationKind.AUTO_GENERATED, "Precedence: bulk"),
        ({"Precedence": "junk"}, AutomationKind.AUTO_GENERATED, "Precedence: junk"),
        ({"Precedence": "list"}, AutomationKind.LIST, "Precedence: list"),
        ({"List-Id": "<news.shop.example>"}, AutomationKind.LIST, "List-Id"),
        ({"List-Unsubscribe": "<https://shop.example/u>"}, AutomationKind.LIST, "List-Unsubscribe"),
        ({"X-Auto-Response-Suppress": "All"}, AutomationKind.AUTO_GENERATED, "X-Auto-Response-Suppress: All"),
        ({"Return-Path": "<>"}, AutomationKind.AUTO_GENERATED, "Return-Path: <>"),
    ],
)
def test_machine_headers_are_recognised_and_named(
    headers: dict[str, str], kind: AutomationKind, reason: str
) -> None:
    verdict = detect_automation(mail(headers), US, CONFIG)
    assert verdict.kind is kind
    assert reason in verdict.reason


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@portal.example",
        "no-reply@erp.example",
        "do-not-reply@shop.example",
        "donotreply@shop.example",
    ],
)
def test_noreply_senders_are_never_answered(sender: str) -> None:
    assert kind_of(mail(sender=sender)) is AutomationKind.NOREPLY


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example", "postmaster@mx.example"])
def test_mail_system_senders_are_machines(sender: str) -> None:
    assert kind_of(mail(sender=sender, body="Hello")) is AutomationKind.NOREPLY


def test_our_own_address_is_a_loop() -> None:
    verdict = detect_automation(from_file("automation-own-loop.eml"), US, CONFIG)
    assert verdict.kind is AutomationKind.OWN
    assert "ta-pm@support.example.test" in verdict.reason


def test_our_own_message_id_is_a_loop() -> None:
    verdict = detect_automation(mail({"Message-ID": "<x@mailbot.example.test>"}), US, CONFIG)
    assert verdict.kind is AutomationKind.OWN


def test_a_reply_to_our_message_is_not_a_loop() -> None:
    assert kind_of(mail({"In-Reply-To": "<20260101T000000.aa@mailbot.example.test>"})) is AutomationKind.HUMAN


def test_delivery_status_report_is_a_bounce_with_its_report() -> None:
    verdict = detect_automation(from_file("parse-dsn.eml"), US, CONFIG)
    assert verdict.kind is AutomationKind.BOUNCE
    assert verdict.report is not None
    assert verdict.report.original_message_id == "20260306T095955.aa11bb22cc33@mailbot.example.test"
    assert verdict.report.recipients == ("nobody@buyer-shop.example",)
    assert verdict.report.status == "5.1.1"


def test_old_plain_text_bounce_is_a_bounce() -> None:
    verdict = detect_automation(from_file("parse-qmail-bounce.eml"), US, CONFIG)
    assert verdict.kind is AutomationKind.BOUNCE
    assert verdict.report is not None and verdict.report.recipients[0] == "li.wei@buyer-shop.example"


def test_bounce_subject_with_a_null_sender_is_a_bounce() -> None:
    m = mail(
        {"Return-Path": "<>"}, subject="Undeliverable: [Case #K7Q2XZ] order", sender="System <sys@mx.example>"
    )
    assert kind_of(m) is AutomationKind.BOUNCE


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: [Case #MCPBNR] Next step",
        "Out of Office: order question",
        "Réponse automatique : [Case #2PJQ8K] Report concern",
        "Abwesenheitsnotiz: Bestellung",
        "Respuesta automática: pedido",
        "自动回复：[Case #TMRDHC] Report concern",
        "Автоответ: заказ",
        "Otomatik yanıt: sipariş",
        "Trả lời tự động: đơn hàng",
        "Balasan otomatis: pesanan",
        "رد تلقائي: الطلب",
        "AUTO: Smith, John is out of the office. (returning 05/01/2010)",
    ],
)
def test_out_of_office_subjects_in_many_languages_are_auto_replies(subject: str) -> None:
    verdict = detect_automation(mail(subject=subject, body="I am away."), US, CONFIG)
    assert verdict.kind is AutomationKind.AUTO_REPLY
    assert "out-of-office subject" in verdict.reason


def test_out_of_office_body_alone_is_an_auto_reply_when_it_answers_something() -> None:
    verdict = detect_automation(from_file("automation-ooo-body-only.eml"), US, CONFIG)
    assert verdict.kind is AutomationKind.AUTO_REPLY
    assert "limited access" in verdict.reason


def test_a_chinese_out_of_office_body_in_our_case_thread_is_an_auto_reply() -> None:
    body = "您好！\n\n我已于4月30日至5月6日休假，期间无法及时查看和回复邮件。\n返回后我会尽快回复您，谢谢！"
    m = mail(
        headers={"In-Reply-To": "<20260429T1000.ab12@mailbot.example.test>"},
        body=body,
        subject="Re: [Case #CW3HQ8] Production Monitoring task received",
    )
    assert kind_of(m) is AutomationKind.AUTO_REPLY


def test_a_buyer_mentioning_a_holiday_in_a_real_request_is_human() -> None:
    body = (
        "I will be on vacation from next week, so please cancel the production monitoring for order "
        "162534987612345 before then and confirm by email. The supplier has agreed and the goods ship later. "
        * 4
    )
    assert kind_of(mail(body=body, subject="Cancel monitoring")) is AutomationKind.HUMAN


def test_auto_generated_mail_with_an_out_of_office_subject_is_an_auto_reply() -> None:
    m = mail({"Auto-Submitted": "auto-generated"}, subject="Out of Office: [Case #6VUPA3] Next step")
    assert kind_of(m) is AutomationKind.AUTO_REPLY


def test_list_mail_from_a_noreply_erp_keeps_its_reason() -> None:
    verdict = detect_automation(from_file("automation-noreply-erp.eml"), US, CONFIG)
    assert verdict.kind is AutomationKind.NOREPLY
    assert "no-reply@erp.tanaka-sangyo.example" in verdict.reason


def test_read_receipt_is_a_machine_message() -> None:
    raw = (
        b"From: buyer@shop.example\nSubject: Read: order\nContent-Type: multipart/report; "
        b'report-type=disposition-notification; boundary="r"\n\n'
        b"--r\nContent-Type: text/plain\n\nRead.\n--r--\n"
    )
    assert kind_of(parse(raw)) is AutomationKind.AUTO_GENERATED


# -- machines that used to get answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("automation-mail-delivery-system.eml", AutomationKind.BOUNCE, "Mail.Delivery.System@"),
        ("automation-post-master.eml", AutomationKind.BOUNCE, "post_master@"),
        ("automation-return-path-mailer-daemon.eml", AutomationKind.AUTO_GENERATED, "mailer-daemon@"),
        ("automation-report-without-type.eml", AutomationKind.BOUNCE, "without report-type"),
        ("automation-arf-mixed.eml", AutomationKind.AUTO_GENERATED, "ARF"),
        ("automation-list-loop-alert.eml", AutomationKind.LIST, "buyers-owner@"),
        ("automation-loop-alert-plain-sender.eml", AutomationKind.AUTO_GENERATED, "loop notice subject"),
    ],
)
def test_machine_shapes_seen_answering_in_the_wild_are_recognised(
    name: str, kind: AutomationKind, reason: str
) -> None:
    verdict = detect_automation(from_file(name), US, CONFIG)
    assert verdict.kind is kind
    assert reason.lower() in verdict.reason.lower()


def test_a_text_bounce_from_the_mail_delivery_system_carries_the_servers_answer() -> None:
    verdict = detect_automation(from_file("automation-mail-delivery-system.eml"), US, CONFIG)
    assert verdict.report is not None
    assert verdict.report.permanent
    assert verdict.report.status == "5.1.1"
    assert verdict.report.diagnostic is not None and verdict.report.diagnostic.startswith("550 5.1.1")


@pytest.mark.parametrize(
    "sender",
    [
        "Mail.Delivery.System@mx.example",
        "post_master@mx.example",
        "mail-daemon@mx.example",
        "Postmaster@mx.example",
    ],
)
def test_every_spelling_of_the_mail_system_is_a_machine(sender: str) -> None:
    assert detect_automation(mail(sender=sender, body="Hello"), US, CONFIG).is_machine


def test_a_return_path_of_the_mailer_daemon_with_a_failure_is_a_bounce() -> None:
    m = mail(
        {"Return-Path": "<MAILER-DAEMON@mx.example>"},
        subject="Notice",
        body="Your mail could not be delivered.\n550 5.1.1 <b@x.example>: user unknown",
        sender="Gateway <gw@mx.example>",
    )
    assert kind_of(m) is AutomationKind.BOUNCE


def test_x_loop_naming_our_address_is_a_loop() -> None:
    assert kind_of(mail({"X-Loop": "ta-pm@support.example.test"})) is AutomationKind.OWN


def test_a_buyer_writing_to_a_list_style_address_of_their_own_company_is_still_human() -> None:
    assert kind_of(mail(sender="Purchasing <purchase-request@shop.example>")) is AutomationKind.HUMAN


def test_the_chain_records_every_miss_before_the_hit_that_decided() -> None:
    verdict = detect_automation(mail({"Precedence": "bulk"}), US, CONFIG)
    names = [step.rule.removeprefix("automation: ") for step in verdict.trace]
    assert names == list(check_names()[: names.index("precedence") + 1])
    assert [step.hit for step in verdict.trace] == [False] * (len(names) - 1) + [True]
    assert "Precedence: bulk" in verdict.trace[-1].why


def test_a_human_mail_shows_every_check_as_a_miss() -> None:
    verdict = detect_automation(mail(), US, CONFIG)
    assert [step.rule.removeprefix("automation: ") for step in verdict.trace] == list(check_names())
    assert not any(step.hit for step in verdict.trace)
    assert all(step.why.startswith("no ") for step in verdict.trace)


def test_a_mistake_in_the_loop_notice_words_names_file_line_and_key(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent / "rules", rules)
    lexicon = rules / "lexicons" / "de.toml"
    lexicon.write_text(
        lexicon.read_text().replace('loop_subjects = ["mailschleife"', 'loop_subjects = [7, "mailschleife"')
    )
    line = next(
        n for n, text in enumerate(lexicon.read_text().splitlines(), 1) if text.startswith("loop_subjects")
    )
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert str(caught.value).startswith(f"{lexicon}:{line}: automation.loop_subjects:")


def test_the_loop_notice_words_are_part_of_the_rule_set_version(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent / "rules", rules)
    (rules / "routing.toml").write_text("")  # the version needs a main routing file; its rules do not matter
    before = routing_version(rules)
    lexicon = rules / "lexicons" / "en.toml"
    lexicon.write_text(lexicon.read_text().replace('"loop alert",', '"loop alert", "loop notice",'))
    assert routing_version(rules) != before


def test_a_megabyte_subject_and_body_are_judged_by_their_opening() -> None:
    # The word checks read the first MAX_SCAN_CHARS of a subject or body, so a megabyte of words is
    # judged as fast as its opening (an earlier version collected every hit of a megabyte subject).
    words = "please " * 150_000
    away = dataclasses.replace(mail(), subject="Abwesenheitsnotiz: " + words, text=words, new_text=words)
    assert detect_automation(away, US, CONFIG).kind is AutomationKind.AUTO_REPLY
    buyer = dataclasses.replace(mail(), subject=words, text=words, new_text=words)
    assert detect_automation(buyer, US, CONFIG).kind is AutomationKind.HUMAN


def test_an_out_of_office_word_past_the_scanned_opening_is_not_read() -> None:
    subject = "x" * MAX_SCAN_CHARS + " Abwesenheitsnotiz"
    assert kind_of(dataclasses.replace(mail(), subject=subject)) is AutomationKind.HUMAN
