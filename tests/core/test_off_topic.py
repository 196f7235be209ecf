"""Mail that is no request of ours (off-topic mail, newsletters) is not answered, and a short word
of another language does not decide what a mail asks.

The lexicon here is the test's own (a few words), so a supervisor's edit of rules/ cannot change
what these tests say about the rule itself.
"""

from __future__ import annotations

from pathlib import Path

from mailbot.core.evaluation import scored_intent
from mailbot.core.intent import IntentLexicon, classify_intent
from mailbot.core.parse import parse
from mailbot.core.phrases import Phrase
from mailbot.core.types import (
    AutomationKind,
    AutomationVerdict,
    Intent,
    IntentResult,
    OrderExtraction,
    OrderRef,
    ThreadKeys,
)

EML = Path(__file__).resolve().parents[1] / "eml" / "off_topic"
HUMAN = AutomationVerdict(AutomationKind.HUMAN, "no sign of automation")
NO_KEYS = ThreadKeys(our_message_ids=(), case_refs=())
NO_ORDERS = OrderExtraction(orders=())
LEXICON = IntentLexicon(
    phrases=(
        Phrase("cancel*", "cancellation", "en", 2.0),
        Phrase("who pays", "payment_question", "en", 1.0),
        Phrase("room", "add_service", "en", 1.0),
    ),
    service_words=(Phrase("inspect*", "service", "en"), Phrase("supplier*", "service", "en")),
)


def classify(name: str, orders: OrderExtraction = NO_ORDERS, keys: ThreadKeys = NO_KEYS) -> IntentResult:
    mail = parse((EML / name).read_bytes())
    return classify_intent(mail, HUMAN, keys, orders, "en", LEXICON)


def test_a_hotel_booking_confirmation_is_off_topic_and_says_why() -> None:
    result = classify("hotel-booking.eml")
    assert result.intent is Intent.OFF_TOPIC
    assert "no order number, none of our services named" in result.reasons[0]


def test_a_meeting_invitation_is_off_topic_even_when_it_names_a_service_word() -> None:
    result = classify("meeting-invitation.eml")
    assert result.intent is Intent.OFF_TOPIC
    assert result.reasons == ("off-topic: a meeting invitation, with no order number",)


def test_a_terse_request_in_plain_words_is_answered_without_order_or_service_word() -> None:
    assert classify("terse-cancellation.eml").intent is Intent.CANCELLATION


def test_a_question_that_names_one_of_our_services_is_not_off_topic() -> None:
    assert classify("service-question.eml").intent is not Intent.OFF_TOPIC


def test_an_order_number_makes_any_mail_a_request_of_ours() -> None:
    orders = OrderExtraction(orders=(OrderRef("3909797815690838", 1.0, "new_text"),))
    assert classify("hotel-booking.eml", orders=orders).intent is not Intent.OFF_TOPIC


def test_a_reply_in_one_of_our_case_threads_is_a_follow_up_not_off_topic() -> None:
    keys = ThreadKeys(our_message_ids=(), case_refs=("K7Q2XZ",))
    assert classify("hotel-booking.eml", keys=keys).intent is Intent.FOLLOW_UP


def test_without_service_words_configured_nothing_is_off_topic() -> None:
    mail = parse((EML / "hotel-booking.eml").read_bytes())
    bare = IntentLexicon(phrases=LEXICON.phrases)
    assert classify_intent(mail, HUMAN, NO_KEYS, NO_ORDERS, "en", bare).intent is not Intent.OFF_TOPIC


def test_off_topic_is_scored_against_the_spam_label_of_the_labelled_sets() -> None:
    assert scored_intent(Intent.OFF_TOPIC) == "spam"
    assert scored_intent(Intent.CANCELLATION) == "cancellation"


def test_a_newsletter_naming_no_order_is_spam_whatever_it_reports_about_our_services() -> None:
    mail = parse((EML / "trade-newsletter.eml").read_bytes())
    listed = AutomationVerdict(AutomationKind.LIST, "List-Id: Asia Sourcing Weekly")
    result = classify_intent(mail, listed, NO_KEYS, NO_ORDERS, "en", LEXICON)
    assert result.intent is Intent.SPAM
    assert result.reasons[0].startswith("bulk mail (list) that names no order number")


def test_bulk_mail_naming_an_order_is_read_for_what_it_asks() -> None:
    mail = parse((EML / "terse-cancellation.eml").read_bytes())
    erp = AutomationVerdict(AutomationKind.AUTO_GENERATED, "Precedence: bulk")
    orders = OrderExtraction(orders=(OrderRef("3909797815690838", 1.0, "new_text"),))
    assert classify_intent(mail, erp, NO_KEYS, orders, "en", LEXICON).intent is Intent.CANCELLATION


def test_a_short_word_of_another_language_is_a_false_friend_and_does_not_count() -> None:
    mail = parse((EML / "service-question.eml").read_bytes())
    lexicon = IntentLexicon(
        phrases=(Phrase("who", "report_dispute", "vi", 2.0), Phrase("who", "general_question", "en", 1.0)),
        service_words=LEXICON.service_words,
    )
    result = classify_intent(mail, HUMAN, NO_KEYS, NO_ORDERS, "en", lexicon)
    assert dict(result.scores) == {Intent.GENERAL_QUESTION: 1.0}
    in_vietnamese = classify_intent(mail, HUMAN, NO_KEYS, NO_ORDERS, "vi", lexicon)
    assert dict(in_vietnamese.scores)[Intent.REPORT_DISPUTE] == 2.0
