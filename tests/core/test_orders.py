"""extract_orders: which order numbers a mail is about, in which order, and why; look-alikes rejected."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.orders import OrderConfig, extract_orders
from mailbot.core.parse import parse
from mailbot.core.types import InboundMail, ThreadKeys

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES).orders
EML = Path(__file__).resolve().parents[1] / "eml"


def mail(
    body: str = "", subject: str = "Question", html: str | None = None, attachment: str | None = None
) -> InboundMail:
    message = EmailMessage()
    message["From"] = "buyer@shop.example"
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = subject
    if html is not None and not body:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    if attachment is not None:
        message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=attachment)
    return parse(message.as_bytes())


def numbers(m: InboundMail, **kwargs: object) -> tuple[str, ...]:
    return extract_orders(m, CONFIG, **kwargs).numbers  # type: ignore[arg-type]


def rejected_reason(m: InboundMail, text: str) -> str:
    extraction = extract_orders(m, CONFIG)
    return next(r.reason for r in extraction.rejected if r.text == text)


@pytest.mark.parametrize(
    "written",
    [
        "1625 3498 7612 345",
        "1625-3498-7612-345",
        "162 534 987 612 345",
        "TA-16253 498 7612 345",
        "TA162534987612345",
    ],
)
def test_digits_written_in_groups_are_joined(written: str) -> None:
    assert numbers(mail(f"Please cancel order {written}, thanks.")) == ("162534987612345",)


def test_a_number_typed_in_two_odd_pieces_on_one_line_is_joined() -> None:
    assert numbers(mail("Please stop the inspection for my order 3219748087 8451515, thanks.")) == (
        "32197480878451515",
    )


def test_digits_split_by_a_line_break_are_joined() -> None:
    assert numbers(mail("This is about order 10841502622506\n5158. Please check.")) == ("108415026225065158",)


def test_full_width_and_arabic_indic_digits_are_read() -> None:
    assert numbers(mail("订单号：１６２５３４９８７６１２３４５")) == ("162534987612345",)
    assert numbers(mail("الطلب رقم ١٦٢٥٣٤٩٨٧٦١٢٣٤٥")) == ("162534987612345",)


@pytest.mark.parametrize(
    "sentence",
    [
        "Please check order no. {n} today.",
        "Necesito cancelar el pedido nº {n} por favor.",
        "Tenho dúvidas sobre o relatório do pedido {n} agora.",
        "Problème avec le rapport de la commande {n} reçue.",
        "Im Bericht zur Bestellung {n} stimmt etwas nicht.",
        "Отмените мониторинг по заказу № {n}, пожалуйста.",
        "بخصوص الطلب رقم {n} شكرا",
        "请帮我取消订单{n}的验货",
        "{n} nolu sipariş için üretim takibi eklemek istiyoruz.",
        "Báo cáo của đơn hàng {n} thiếu ảnh.",
        "Saya mau cancel untuk no. pesanan {n} karena dibatalkan.",
        "注文番号{n}のレポートについて",
        "Vorremmo aggiungere l'ispezione all'ordine n. {n}, grazie.",
        "주문번호 {n} 검수 보고서 관련 문의드립니다.",
    ],
)
def test_context_words_of_every_lexicon_language_are_recognised(sentence: str) -> None:
    extraction = extract_orders(mail(sentence.format(n="3317251405989331")), CONFIG)
    assert extraction.numbers == ("3317251405989331",)
    assert any(r.startswith(("after", "before")) for r in extraction.orders[0].reasons)


def test_several_orders_are_all_listed_in_the_order_written() -> None:
    m = mail("Please cancel orders 4707674394604932 and 48925354805099414; also 1234-5678-9012-3456.")
    assert numbers(m) == ("4707674394604932", "48925354805099414", "1234567890123456")


def test_orders_on_consecutive_lines_stay_apart() -> None:
    m = mail("Orders to cancel:\n1234 5678 9012 3456\n2345 6789 0123 4567\nThanks")
    assert numbers(m) == ("1234567890123456", "2345678901234567")


def test_the_number_of_the_next_list_item_is_not_joined_to_an_order() -> None:
    m = mail("Please cancel:\n  1. PO 77120 / TA 245118930027461\n  2. PO 77124 / TA 245118930031992\nThanks")
    assert numbers(m) == ("245118930027461", "245118930031992")


def test_a_quantity_after_a_complete_number_is_not_joined() -> None:
    assert numbers(mail("Order 4709951454867277 2000 pcs are missing.")) == ("4709951454867277",)


@pytest.mark.parametrize(
    ("body", "decoy", "reason"),
    [
        ("Mobile: +86 138 0013 8000 123", "86 138 0013 8000 123", "phone number"),
        ("Bank account: 6217 0628 2270 2981 108", "6217 0628 2270 2981 108", "bank"),
        ("IBAN DE89 3704 0044 0532 0130 00", "89 3704 0044 0532 0130 00", "letters 'DE'"),
        ("VAT no. 123456789012", "123456789012", "tax"),
        ("统一社会信用代码 911553220123456789", "911553220123456789", "tax"),
        ("ОГРН 10277261595493", "10277261595493", "tax"),
        ("FedEx tracking 123456789012", "123456789012", "tracking"),
        ("PI No. 202603110087123", "202603110087123", "document"),
        ("Invoice 1234567890123", "1234567890123", "document"),
        ("Total USD 123456789012.50", "123456789012", "amount"),
        ("Invoice Reg. No. T1479619445093", "1479619445093", "letters 'T'"),
        ("Photo taken 20260314101455", "20260314101455", "time stamp"),
        ("如有紧急事务，请致电 0574-8555 6632 联系采购部", "0574-8555 6632", "phone"),
        ("Urgent matters: 0755-5555-0136 (office)", "0755-5555-0136", "starts with 0"),
        ("رقم التسجيل الضريبي: 100234567800003", "100234567800003", "tax"),
        ("Report no. 2026-0418-7751 attached", "2026-0418-7751", "a date followed by a short serial"),
        ("Two charges on my card:\n  - ref 202603121045338871", "202603121045338871", "payment"),
        ("Partita IVA 012345678901", "012345678901", "tax"),
        ("Cellulare 333 1234 5678 90", "333 1234 5678 90", "phone"),
        ("운송장번호 123456789012345 입니다", "123456789012345", "tracking"),
        ("사업자등록번호: 1234567890123", "1234567890123", "tax"),
        ("к/с 30101810500000000110", "30101810500000000110", "bank"),
        ("р/с 407028106669683179841", "407028106669683179841", "longer than"),
        ('boundary="_----------=_1337625986146380"', "1337625986146380", "part of a longer identifier"),
    ],
)
def test_look_alikes_are_rejected_with_a_reason(body: str, decoy: str, reason: str) -> None:
    m = mail(body)
    assert numbers(m) == ()
    assert reason in rejected_reason(m, decoy)


def test_a_code_with_letters_of_its_own_is_not_an_order() -> None:
    m = mail("Please review the report (No. INS-2026-0418-7751-0093).")
    assert numbers(m) == ()
    assert "code 'INS-'" in rejected_reason(m, "2026-0418-7751-0093")
    assert numbers(mail("Please cancel TA-162534987612345.")) == ("162534987612345",)


def test_brackets_around_an_order_number_do_not_make_it_a_phone_number() -> None:
    assert numbers(mail("Hello,\n\nmy order (95914863400945892)\n\nThanks")) == ("95914863400945892",)
    assert numbers(mail("我的订单（79382530908034533）请帮我取消验货。")) == ("79382530908034533",)
    m = mail("Call (020) 1234 5678 9012 today.")
    assert numbers(m) == ()
    assert "phone number" in rejected_reason(m, "1234 5678 9012")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("内箱に品番とJANコード（4901234567894）を印字する指示です。", "4901234567894"),
        ("The EAN (4006381333931) is missing on the cartons.", "4006381333931"),
        ("外箱条形码 6901234567892 印错了", "6901234567892"),
    ],
)
def test_product_barcodes_are_look_alikes(body: str, code: str) -> None:
    m = mail(body)
    assert numbers(m) == ()
    assert "barcode" in rejected_reason(m, code)


def test_bracketed_codes_back_to_back_are_machine_output_not_orders() -> None:
    m = mail("x-antispam-report: RULEID:(100000700101)(227612066756510)(100105000095);SRVR:AM4PR01")
    assert numbers(m) == ()
    assert "bracketed codes" in rejected_reason(m, "227612066756510")


def test_an_order_word_ending_in_ref_is_not_a_payment_reference() -> None:
    assert numbers(mail("Trade Assurance ref 27730915548862013 (PO 4500231187) is cancelled.")) == (
        "27730915548862013",
    )


def test_a_number_after_an_order_word_wins_over_a_decoy_word_further_back() -> None:
    assert numbers(mail("The PI does not match the report for order 162534987612345.")) == (
        "162534987612345",
    )


def test_numbers_in_the_signature_need_an_order_word() -> None:
    m = mail(
        "How does the inspection work?\n\nBest regards,\nAnn\nSSM 208203689931\nOrder ref: 162534987612345"
    )
    assert numbers(m) == ("162534987612345",)
    assert "signature without an order word" in rejected_reason(m, "208203689931")


def test_body_order_comes_before_an_older_order_in_the_subject() -> None:
    m = mail("New order 98095392207118 please cancel.", subject="Re: PM for order 574833050467540631")
    extraction = extract_orders(m, CONFIG)
    assert extraction.numbers == ("98095392207118", "574833050467540631")
    assert [o.source for o in extraction.orders] == ["new_text", "subject"]


def test_a_subject_number_the_buyer_calls_mistyped_is_dropped() -> None:
    m = mail(
        "Sorry, the number in the subject is a typo. It is 111122223333455.", subject="Order 111122223333444"
    )
    assert numbers(m) == ("111122223333455",)
    assert "corrects the subject" in rejected_reason(m, "111122223333444")


def test_a_subject_number_with_two_digits_swapped_is_the_typo_the_text_corrects() -> None:
    m = mail(
        "Sorry, the right one is 5520 3488 1773 0169.", subject="Cancel inspection order 5520348817730196"
    )
    assert numbers(m) == ("5520348817730169",)
    assert "two digits swapped" in rejected_reason(m, "5520348817730196")


def test_a_different_order_in_the_subject_is_still_listed_second() -> None:
    m = mail("Please cancel order 5520348817730169.", subject="Order 5520348817730170")
    assert numbers(m) == ("5520348817730169", "5520348817730170")


def test_same_number_in_subject_and_body_is_listed_once_with_both_sources_named() -> None:
    m = mail(
        "Please cancel Trade Assurance order 4709951454867277.", subject="Cancellation - 4709 9514 5486 7277"
    )
    extraction = extract_orders(m, CONFIG)
    assert extraction.numbers == ("4709951454867277",)
    assert "also in the subject" in extraction.orders[0].reasons


QUOTED = (
    "Any news on this?\n\nOn Mon, 1 Jan 2026 at 10:00, X <x@y.example> wrote:\n"
    "> Your order 123456789012345 is ready."
)


def test_quoted_history_alone_does_not_name_an_order() -> None:
    m = mail(QUOTED)
    assert numbers(m) == ()
    assert "quoted history" in rejected_reason(m, "123456789012345")


def test_quoted_history_counts_inside_our_own_case_thread() -> None:
    keys = ThreadKeys(our_message_ids=("20260101T100000.aa@mailbot.example.test",), case_refs=())
    extraction = extract_orders(mail(QUOTED), CONFIG, thread=keys)
    assert extraction.numbers == ("123456789012345",)
    assert extraction.orders[0].source == "quoted"


def test_quoted_order_of_the_case_counts_even_next_to_a_fresh_one() -> None:
    m = mail("Also order 998877665544332.\n\n" + QUOTED.split("\n\n", 1)[1])
    assert numbers(m, case_orders=("123456789012345",)) == ("998877665544332", "123456789012345")


def test_quoted_numbers_rank_below_new_text_numbers() -> None:
    keys = ThreadKeys(our_message_ids=(), case_refs=("K7Q2XZ",))
    m = mail("Order 998877665544332 please.\n\n" + QUOTED.split("\n\n", 1)[1])
    assert numbers(m, thread=keys, case_orders=("123456789012345",)) == ("998877665544332", "123456789012345")


def test_order_in_a_link_to_the_order_page_is_found() -> None:
    m = mail(
        "It's this one: https://trade.example.test/order/detail.htm?orderId=5505840392770013&spm=a2700.5"
    )
    extraction = extract_orders(m, CONFIG)
    assert extraction.numbers == ("5505840392770013",)
    assert extraction.orders[0].source == "url"


def test_order_only_in_an_html_table_is_found_under_its_heading() -> None:
    html = (
        "<p>See the table.</p><table><tr><th>Order No.</th><th>Qty</th></tr>"
        "<tr><td>3855 7935 4333 3243</td><td>2,000</td></tr></table>"
    )
    extraction = extract_orders(mail(html=html), CONFIG)
    assert extraction.numbers == ("3855793543333243",)
    assert any("heading" in r for r in extraction.orders[0].reasons)


def test_a_table_number_takes_the_heading_of_its_own_column() -> None:
    html = (
        "<table><tr><th>Trade Assurance order</th><th>PO No.</th><th>Amount</th></tr>"
        "<tr><td><span>9120 4471</span><span> 8836 0052</span></td><td>202603110087123</td>"
        "<td>USD 23,880.00</td></tr></table>"
    )
    m = mail(html=html)
    assert numbers(m) == ("9120447188360052",)
    assert "po no" in rejected_reason(m, "202603110087123")


def test_an_order_linked_only_behind_words_is_read_from_the_link() -> None:
    html = (
        '<p>Regarding <a href="https://trade.example.test/order/detail.htm?orderId=289114607532288410">'
        "this order</a>, the report is wrong.</p>"
    )
    extraction = extract_orders(mail(html=html), CONFIG)
    assert extraction.numbers == ("289114607532288410",)
    assert extraction.orders[0].source == "url"


def test_order_only_in_an_attachment_name_is_found() -> None:
    extraction = extract_orders(
        mail("See the attached report.", attachment="Report_2696166302883.pdf"), CONFIG
    )
    assert extraction.numbers == ("2696166302883",)
    assert extraction.orders[0].source == "attachment_name"


def test_timestamp_in_a_photo_name_is_not_an_order() -> None:
    m = mail("Photos attached.", attachment="微信图片_20260916080016.jpg")
    assert numbers(m) == ()


def test_order_only_in_forwarded_content_is_listed() -> None:
    m = parse((EML / "parse-forward-attached.eml").read_bytes())
    extraction = extract_orders(m, CONFIG)
    assert extraction.numbers == ("4417092388501267",)
    assert extraction.orders[0].source == "forwarded"


def test_every_result_and_every_rejection_says_why() -> None:
    m = mail("Order 162534987612345, tel +86 138 0013 8000 1234.", subject="Re: order 998877665544332")
    extraction = extract_orders(m, CONFIG)
    assert all(o.reasons and o.score > 0 for o in extraction.orders)
    assert extraction.rejected and all(r.reason for r in extraction.rejected)


def test_the_length_of_an_order_number_is_configurable() -> None:
    m = mail("Order 1234567890 please.")
    assert numbers(m) == ()
    short = dataclasses.replace(CONFIG, min_digits=10)
    assert extract_orders(m, short).numbers == ("1234567890",)


def test_an_empty_config_still_reads_bare_numbers() -> None:
    assert extract_orders(mail("1625 3498 7612 345"), OrderConfig()).numbers == ("162534987612345",)


def test_a_number_the_text_calls_an_account_is_no_order_in_the_subject_either() -> None:
    m = parse((EML / "orders" / "subject-repeats-an-account.eml").read_bytes())
    result = extract_orders(m, CONFIG)
    assert result.numbers == ()
    subject = [r for r in result.rejected if r.source == "subject"]
    assert [r.reason.split(":")[0] for r in subject] == ["the text says what it is"]
