"""classify_intent: machines first, then our case threads, then the lexicons' phrases decide the topic."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.automation import detect_automation
from mailbot.core.conversation import thread_keys
from mailbot.core.intent import IntentLexicon, classify_intent
from mailbot.core.orders import extract_orders
from mailbot.core.parse import parse
from mailbot.core.phrases import Phrase
from mailbot.core.types import (
    AutomationKind,
    AutomationVerdict,
    Identity,
    InboundMail,
    Intent,
    IntentResult,
    OrderExtraction,
    ThreadKeys,
)

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES)
EML = Path(__file__).resolve().parents[1] / "eml"
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
HUMAN = AutomationVerdict(AutomationKind.HUMAN, "no sign of automation")
NO_KEYS = ThreadKeys(our_message_ids=(), case_refs=())


def mail(body: str, subject: str = "Hello", headers: dict[str, str] | None = None) -> InboundMail:
    message = EmailMessage()
    message["From"] = "buyer@shop.example"
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = subject
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return parse(message.as_bytes())


def classify(m: InboundMail, lexicon: IntentLexicon | None = None) -> IntentResult:
    automation = detect_automation(m, US, CONFIG.automation)
    keys = thread_keys(m, US)
    orders = extract_orders(m, CONFIG.orders, thread=keys)
    return classify_intent(m, automation, keys, orders, "en", lexicon or CONFIG.intents)


@pytest.mark.parametrize(
    ("intent", "subject", "body"),
    [
        (
            Intent.CANCELLATION,
            "Stop inspection",
            "Please cancel production monitoring for our order, thank you.",
        ),
        (
            Intent.CANCELLATION,
            "Cancelar servicio",
            "Necesito cancelar el servicio de monitoreo para el pedido.",
        ),
        (Intent.CANCELLATION, "取消验货", "请帮我取消订单的验货，我们已经和供应商取消了这个订单。"),
        (Intent.CANCELLATION, "Отмена", "Отмените, пожалуйста, мониторинг производства по заказу."),
        (
            Intent.REPORT_DISPUTE,
            "Report",
            "The report says 1,125 pcs but I ordered 1,500. The report is wrong.",
        ),
        (
            Intent.REPORT_DISPUTE,
            "Problème rapport",
            "Les photos sont floues et l'emballage n'est pas conforme à la PI.",
        ),
        (Intent.REPORT_DISPUTE, "Bericht fehlerhaft", "Im Bericht stimmen die Angaben zur Verpackung nicht."),
        (
            Intent.STATUS_INQUIRY,
            "Status?",
            "Can you give me an update on production? I haven't heard anything.",
        ),
        (
            Intent.STATUS_INQUIRY,
            "Report",
            "When will the report for our order be available? The check was Monday.",
        ),
        (Intent.STATUS_INQUIRY, "Статус", "Подскажите, как идёт производство по заказу? Информации нет."),
        (
            Intent.ADD_SERVICE,
            "Add inspection",
            "We want to add Production Monitoring for this order. Supplier agreed.",
        ),
        (
            Intent.ADD_SERVICE,
            "Denetim",
            "Sipariş için üretim takibi eklemek istiyoruz. Tedarikçi kabul etti.",
        ),
        (
            Intent.ADD_SERVICE,
            "Production monitoring",
            "Please set up production monitoring for our order. The supplier (Ningbo Tools) has agreed.",
        ),
        (
            Intent.ADD_SERVICE,
            "Aggiunta monitoraggio della produzione",
            "Buongiorno, vorremmo aggiungere il monitoraggio della produzione al nostro ordine. "
            "Il fornitore è d'accordo e la merce sarà pronta a fine mese. Cordiali saluti",
        ),
        (
            Intent.REPORT_DISPUTE,
            "Rapporto di ispezione",
            "Il rapporto dice 480 cartoni ma nella PI sono 500, e le foto delle etichette sono sfocate.",
        ),
        (
            Intent.STATUS_INQUIRY,
            "검품 진행 상황 문의",
            "안녕하세요. 지난주 검품이 끝났다고 들었는데 보고서가 아직 올라오지 않았습니다. "
            "언제쯤 받을 수 있을까요?",
        ),
        (
            Intent.CANCELLATION,
            "생산 모니터링 취소",
            "공급업체와 주문을 취소했습니다. 생산 모니터링도 취소해 주세요.",
        ),
        (Intent.PAYMENT_QUESTION, "UnionPay?", "Do you accept UnionPay, or only Visa/MasterCard?"),
        (
            Intent.PAYMENT_QUESTION,
            "Receipt",
            "Where can I download the receipt for the inspection fee I paid?",
        ),
        (
            Intent.GENERAL_QUESTION,
            "What do you check?",
            "Does the inspector check the packaging or only the quantity?",
        ),
        (Intent.GENERAL_QUESTION, "Hello", "Please find the inspection documents attached."),
        (
            Intent.GENERAL_QUESTION,
            "Questions about the inspection",
            "Does the standard inspection include a drop test, or only counting? Can we pay extra for it?",
        ),
        (
            Intent.GENERAL_QUESTION,
            "استفسار",
            "هل تشمل خدمة الفحص زيارة المصنعين؟ وهل يمكن أن يكون التقرير باللغة العربية؟",
        ),
        (
            Intent.SPAM,
            "Buyer News",
            "5 tips for your trip. Read more: https://x.example\nUnsubscribe: https://x.example/u",
        ),
        (
            Intent.SPAM,
            "Mailbox full",
            "Dear user, click below to increase your storage for free. IT Service Desk",
        ),
    ],
)
def test_topic_comes_from_lexicon_phrases(intent: Intent, subject: str, body: str) -> None:
    assert classify(mail(body, subject)).intent is intent


def test_reasons_name_the_phrases_that_counted() -> None:
    result = classify(mail("Please cancel the inspection.", "Cancel"))
    assert result.intent is Intent.CANCELLATION
    assert any("'cancel*' (en) in the subject" in r for r in result.reasons)
    assert result.scores[0][0] is Intent.CANCELLATION


def test_a_reply_in_our_case_thread_is_a_follow_up_whatever_the_topic() -> None:
    m = mail("Please cancel it, the report is wrong.", headers={"In-Reply-To": "<a.b@mailbot.example.test>"})
    result = classify(m)
    assert result.intent is Intent.FOLLOW_UP
    assert "a.b@mailbot.example.test" in result.reasons[0]


def test_a_mangled_case_token_in_the_subject_makes_a_follow_up() -> None:
    result = classify(parse((EML / "intent-followup-mangled-ref.eml").read_bytes()))
    assert result.intent is Intent.FOLLOW_UP
    assert "K7Q2XZ" in result.reasons[0]


def test_a_case_reference_written_in_the_text_makes_a_follow_up() -> None:
    result = classify(
        mail("Regarding your case ref. 9JXW4P: the supplier agreed, please book it.", "Booking")
    )
    assert result.intent is Intent.FOLLOW_UP
    assert "9JXW4P" in result.reasons[0]


def test_the_word_case_in_a_sentence_is_not_a_case_reference() -> None:
    m = mail("Just in case anyone asks: please cancel the inspection, in case no action was taken yet.")
    assert classify(m).intent is Intent.CANCELLATION


def test_auto_replies_and_bounces_outrank_the_case_thread() -> None:
    ooo = parse((EML / "automation-ooo-subject-de.eml").read_bytes())
    assert classify(ooo).intent is Intent.AUTO_REPLY
    assert classify(parse((EML / "parse-dsn.eml").read_bytes())).intent is Intent.BOUNCE


def test_our_own_mail_coming_back_is_never_a_request() -> None:
    own = parse((EML / "automation-own-loop.eml").read_bytes())
    assert classify(own).intent is Intent.AUTO_REPLY


def test_machine_mail_keeps_its_topic() -> None:
    erp = parse((EML / "automation-noreply-erp.eml").read_bytes())
    assert classify(erp).intent is Intent.CANCELLATION


def test_a_word_like_unsubscribe_alone_does_not_make_spam() -> None:
    result = classify(mail("Please cancel the inspection for my order. (How do I unsubscribe from updates?)"))
    assert result.intent is Intent.CANCELLATION


def test_mail_about_none_of_our_services_with_signs_of_bulk_mail_is_spam() -> None:
    result = classify(
        mail(
            "Your parcel is on hold. Please pay the customs fee within 48 hours.",
            "Customs fee required",
        )
    )
    assert result.intent is Intent.SPAM
    assert "about none of our services" in result.reasons[0]


def test_a_buyer_naming_our_service_is_not_taken_for_bulk_mail() -> None:
    m = mail("Can I pay the inspection fee within 48 hours of booking, or must I pay at once?", "Fee")
    assert classify(m).intent is Intent.PAYMENT_QUESTION


def test_a_buyer_without_service_words_or_spam_signs_is_still_answered() -> None:
    m = mail("My card was declined when I tried to pay. Can I use PayPal? Thanks for your cooperation.")
    assert classify(m).intent is Intent.PAYMENT_QUESTION


def test_the_letters_of_a_code_are_not_words() -> None:
    result = classify(mail("Please see report INS-2026-0418 and PAY-20260214-7788.", "Report"))
    assert all("'pay'" not in r for r in result.reasons)
    assert Intent.PAYMENT_QUESTION not in dict(result.scores)


def test_a_topic_asked_for_in_subject_and_text_outweighs_the_details() -> None:
    m = mail(
        "Could you please withdraw the production monitoring booking on our order? The monitoring fee "
        "was charged to our Visa card (payment reference 4417). Please put the payment back on the card.",
        "Withdraw monitoring booking",
    )
    result = classify(m)
    assert dict(result.scores)[Intent.PAYMENT_QUESTION] > dict(result.scores)[Intent.CANCELLATION]
    assert result.intent is Intent.CANCELLATION
    assert result.reasons[0].startswith("asked for in the subject ('withdraw*') and in the text")


def test_an_existing_booking_is_not_a_request_to_book() -> None:
    m = mail("The inspection was booked for 3 May. Has the inspector been there yet?", "Inspection")
    assert classify(m).intent is Intent.STATUS_INQUIRY


def test_forwarded_content_counts_at_half_weight() -> None:
    m = mail(
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Sup\n\n"
        "We will cancel the inspection."
    )
    result = classify(m)
    assert result.intent is Intent.CANCELLATION
    assert result.reasons == ("'cancel*' (en) in forwarded text +1.25",)


def test_supervisors_change_the_outcome_by_editing_phrases() -> None:
    m = mail("We would like a second opinion on the grading in the inspection report.", "Grading")
    assert classify(m).intent is Intent.GENERAL_QUESTION
    extra = Phrase("second opinion", "report_dispute", "en", 2.0)
    tuned = dataclasses.replace(CONFIG.intents, phrases=(*CONFIG.intents.phrases, extra))
    assert classify(m, tuned).intent is Intent.REPORT_DISPUTE


def test_the_spam_threshold_is_part_of_the_lexicon() -> None:
    m = mail("Special offer for buyers of our inspection service.")
    assert classify(m).intent is not Intent.SPAM
    eager = dataclasses.replace(CONFIG.intents, spam_threshold=1.0)
    assert classify(m, eager).intent is Intent.SPAM


def test_an_additional_charge_in_korean_is_not_a_request_to_add_the_service() -> None:
    # "추가" is also "additional" ("추가 비용"); only "추가하 / 추가할 / 추가 신청" ask to add.
    result = classify(mail("검수 추가 비용은 얼마인가요? 카드로 결제할 수 있나요?", "비용 문의"))
    assert result.intent is Intent.PAYMENT_QUESTION
    assert Intent.ADD_SERVICE not in dict(result.scores)


def test_empty_mail_is_a_general_question() -> None:
    result = classify_intent(mail(""), HUMAN, NO_KEYS, OrderExtraction(()), "en", CONFIG.intents)
    assert result.intent is Intent.GENERAL_QUESTION
    assert result.reasons


def test_a_reply_subject_yields_to_what_the_new_text_asks() -> None:
    m = mail(
        "The report shows 480 cartons but the PI says 500, and the shipping marks are wrong.",
        "RE: Inspection booking for next week",
    )
    assert classify(m).intent is Intent.REPORT_DISPUTE


def test_a_fresh_subject_still_states_the_topic() -> None:
    m = mail("Thanks for your help.", "Inspection booking for next week")
    assert classify(m).intent is Intent.ADD_SERVICE


def test_a_sender_failing_authentication_who_writes_like_bulk_mail_is_spam_even_naming_an_order() -> None:
    m = mail(
        "Dear Valued Buyer,\n\nYour Trade Assurance order 5521930047718823 is on hold because the payment "
        "for your inspection failed. Verify your payment details within 24 hours: "
        "http://login.example/verify",
        "Action required: order on hold",
        headers={"Authentication-Results": "mx.example.test; spf=fail smtp.mailfrom=x.example; dmarc=fail"},
    )
    result = classify(m)
    assert result.intent is Intent.SPAM
    assert "failed authentication (dmarc=fail)" in result.reasons[0]


def test_a_buyer_whose_mail_failed_authentication_is_still_read_by_topic() -> None:
    m = mail(
        "Please cancel the inspection for order 162534987612345, the supplier cancelled the deal.",
        "Cancel inspection",
        headers={"Authentication-Results": "mx.example.test; dmarc=fail header.from=shop.example"},
    )
    assert classify(m).intent is Intent.CANCELLATION


def test_without_an_order_words_that_only_describe_a_report_ask_a_general_question() -> None:
    m = mail(
        "We will use the inspection for the first time. Do the reports have photos of the packaging, "
        "and is the quantity counted?",
        "Questions about the inspection report",
    )
    assert classify(m).intent is Intent.GENERAL_QUESTION


def test_the_same_words_about_an_order_make_a_dispute() -> None:
    m = mail(
        "The inspection report for order 162534987612345 shows the packaging and the quantity "
        "differently from our PI; the photos show other cartons.",
        "Inspection report",
    )
    assert classify(m).intent is Intent.REPORT_DISPUTE


def test_asking_what_the_inspection_includes_is_a_general_question_even_naming_an_order() -> None:
    m = mail(
        "Before the inspector goes to the factory for order 476659977631743: does it include the inner "
        "carton markings and the packaging, or only the quantity? Will the inspector test the drivers?",
        "Query about what PM covers",
    )
    assert classify(m).intent is Intent.GENERAL_QUESTION


@pytest.mark.parametrize(
    ("intent", "subject", "body"),
    [
        (Intent.STATUS_INQUIRY, "TA69689982839992837", "did anyone go to the factory? i've heard nothing."),
        (Intent.ADD_SERVICE, "quick q", "Can you send someone to check before they ship?"),
        (Intent.REPORT_DISPUTE, "PM report", "The numbers in your document don't add up."),
        (Intent.CANCELLATION, "Monitoreo", "Al final ya no vamos a necesitar el servicio para este pedido."),
    ],
)
def test_requests_written_without_the_obvious_keyword_are_read(
    intent: Intent, subject: str, body: str
) -> None:
    assert classify(mail(body, subject)).intent is intent
