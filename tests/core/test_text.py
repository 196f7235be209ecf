"""text: HTML to text, and a body cut into new text, quoted history, signature and forwarded content."""

from __future__ import annotations

import pytest

from mailbot.core.text import html_to_text, normalise, split_message, unflow


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, Mar 2, 2026 at 10:00 AM Bob Smith <bob@supplier.example> wrote:",
        "Am 02.03.2026 um 10:00 schrieb Bob Smith <bob@supplier.example>:",
        "Le lun. 2 mars 2026 à 10:00, Bob Smith <bob@supplier.example> a écrit :",
        "El lun, 2 mar 2026 a las 10:00, Bob Smith (<bob@supplier.example>) escribió:",
        "Em seg., 2 de mar. de 2026 às 10:00, Bob Smith <bob@supplier.example> escreveu:",
        "Bob Smith <bob@supplier.example> 于2026年3月2日周一 10:00写道：",
        "2026年3月2日(月) 10:00 Bob Smith <bob@supplier.example>:",
        "пн, 2 мар. 2026 г. в 10:00, Bob Smith <bob@supplier.example>:",
        "2 Mar 2026 Pzt 10:00 tarihinde Bob Smith <bob@supplier.example> şunu yazdı:",
        "Vào Th 2, 2 thg 3, 2026 lúc 10:00 Bob Smith <bob@supplier.example> đã viết:",
        "Pada tanggal Sen, 2 Mar 2026 pukul 10.00 Bob Smith <bob@supplier.example> menulis:",
    ],
)
def test_text_below_an_attribution_line_is_quoted_history(header: str) -> None:
    split = split_message(f"Please cancel it.\n\n{header}\nYour order 1111 is ready.\nRegards")
    assert split.new == "Please cancel it."
    assert "Your order 1111 is ready." in split.quoted


def test_attribution_wrapped_over_two_lines_is_recognised() -> None:
    body = (
        "Thanks!\n\nOn 24 Apr 2026, at 18:35, Trade Assurance Production Monitoring\n"
        "<ta@x.example> wrote:\n> hi"
    )
    split = split_message(body)
    assert split.new == "Thanks!"
    assert split.quoted.startswith("On 24 Apr 2026")


@pytest.mark.parametrize(
    "block",
    [
        "From: Bob <bob@s.example>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Ann\nSubject: Order",
        "Von: Bob <bob@s.example>\nGesendet: Montag, 2. März 2026 10:00\nAn: Ann\nBetreff: Auftrag",
        "De : Bob <bob@s.example>\nEnvoyé : lundi 2 mars 2026 10:00\nÀ : Ann\nObjet : Commande",
        "发件人: Bob <bob@s.example>\n发送时间: 2026年3月2日 10:00\n收件人: Ann\n主题: 订单",
        "От: Bob <bob@s.example>\nОтправлено: 2 марта 2026 г. 10:00\nКому: Ann\nТема: Заказ",
        "Kimden: Bob <bob@s.example>\nGönderildi: 2 Mart 2026 Pazartesi 10:00\nKime: Ann\nKonu: Sipariş",
        "-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Ann\nSubject: Order",
        "________________________________\nFrom: Bob <bob@s.example>\nSent: Monday\nTo: Ann",
    ],
)
def test_outlook_header_blocks_start_quoted_history(block: str) -> None:
    split = split_message(f"New question here.\n\n{block}\n\nOld text 2222.")
    assert split.new == "New question here."
    assert "Old text 2222." in split.quoted
    assert split.forwarded == ""


def test_outlook_block_under_a_forward_subject_is_forwarded_content() -> None:
    body = "Please cancel.\n\nFrom: Sup <s@x.example>\nSent: Monday\nTo: Ann\nSubject: ready\n\nOrder 3333."
    split = split_message(body, forwarded=True)
    assert "Order 3333." in split.forwarded
    assert split.quoted == ""


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
        "-------- Weitergeleitete Nachricht --------",
        "---------- Message transféré ---------",
        "---------- 转发的邮件 ----------",
    ],
)
def test_forward_markers_start_forwarded_content(marker: str) -> None:
    split = split_message(f"See below.\n\n{marker}\nFrom: Sup\n\nOrder 4444 packed.")
    assert split.new == "See below."
    assert "Order 4444 packed." in split.forwarded


def test_bottom_posted_reply_keeps_the_text_after_the_quote() -> None:
    body = "El vie, 22 may 2026 a las 23:00, TA (<ta@x.example>) escribió:\n> Hello\n> old\n\nHola, ¿ya está?"
    split = split_message(body)
    assert split.new == "Hola, ¿ya está?"
    assert "> old" in split.quoted


def test_interleaved_quote_lines_are_quoted_and_the_answers_new() -> None:
    split = split_message("> Which order?\n1625 3498 7612 345\n> Which service?\nInspection")
    assert split.new == "1625 3498 7612 345\nInspection"
    assert split.quoted == "> Which order?\n> Which service?"


@pytest.mark.parametrize(
    ("body", "signature_start"),
    [
        ("Please check.\n\n-- \nAnn Lee\nTel 123", "--\nAnn Lee"),
        ("Please check.\n\nSent from my iPhone", "Sent from my iPhone"),
        ("Bitte prüfen.\n\nVon meinem iPhone gesendet", "Von meinem iPhone gesendet"),
        ("Please check.\n\nKind regards,\nAnn Lee\nSales | ACME\nTel +1 555", "Ann Lee"),
        ("请确认。\n\n谢谢\n李伟\n电话: +86 138", "李伟"),
        ("Prosím.\n\nCONFIDENTIALITY NOTICE: This email is private.", "CONFIDENTIALITY NOTICE"),
    ],
)
def test_signature_is_cut_from_the_new_text(body: str, signature_start: str) -> None:
    split = split_message(body)
    assert split.signature.startswith(signature_start)
    assert signature_start not in split.new


def test_a_closing_word_followed_by_more_paragraphs_is_not_a_signature() -> None:
    body = "Thanks,\n\nalso note that the second order 1625 3498 7612 345 must be cancelled as well today."
    split = split_message("Hi team, one more thing.\n\n" + body)
    assert "1625 3498 7612 345" in split.new


def test_html_quote_containers_are_removed_at_dom_level() -> None:
    html = (
        "<div>New words</div>"
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Bob wrote:</div>'
        "<blockquote>old words</blockquote></div>"
        '<div id="divRplyFwdMsg"><b>From:</b> Bob</div><div>older words</div>'
    )
    split = split_message(html_to_text(html, mark_quotes=True))
    assert split.new == "New words"
    assert "old words" in split.quoted
    assert "older words" in split.quoted


def test_blockquote_type_cite_followed_by_an_answer_keeps_the_answer() -> None:
    html = '<p>On Mon, Bob wrote:</p><blockquote type="cite">question?</blockquote><p>my answer</p>'
    split = split_message(html_to_text(html, mark_quotes=True))
    assert split.new == "my answer"
    assert "question?" in split.quoted


def test_html_gmail_forward_is_forwarded_not_quoted() -> None:
    html = (
        "<div>Please cancel this.</div>"
        '<div class="gmail_quote">---------- Forwarded message ---------<br>From: Sup<br><br>'
        "Order 5555 is ready</div>"
    )
    split = split_message(html_to_text(html, mark_quotes=True))
    assert split.new == "Please cancel this."
    assert "Order 5555 is ready" in split.forwarded


def test_html_signature_container_becomes_the_signature() -> None:
    html = '<div>Hello</div><div class="gmail_signature">Ann | +1 555 0100</div>'
    split = split_message(html_to_text(html, mark_quotes=True))
    assert split.new == "Hello"
    assert split.signature == "Ann | +1 555 0100"


def test_html_keeps_inline_digits_together_and_separates_table_cells() -> None:
    text = html_to_text(
        "<p>Order <span>38557935</span><span>43333243</span></p>"
        "<table><tr><td>385579354333324</td><td>2000</td></tr></table>"
    )
    assert "Order 3855793543333243" in text
    assert "385579354333324 | 2000" in text


def test_broken_html_still_gives_text() -> None:
    assert "hello" in html_to_text("<div><p>hello<table><tr><td")


def test_normalise_folds_full_width_digits_and_line_ends() -> None:
    assert normalise("订单号：１６２５\r\nx\u00a0y\u200b") == "订单号:1625\nx y"


def test_unflow_joins_soft_breaks_and_keeps_hard_ones() -> None:
    assert unflow("one \ntwo\nthree", delsp=False) == "one two\nthree"
    assert unflow("1084150 \n2622", delsp=True) == "10841502622"
    assert unflow("> quoted \n> more\nnew", delsp=False) == "> quoted more\nnew"


def test_from_and_to_lines_of_a_shipping_note_are_not_a_quoted_header() -> None:
    body = "Please check the booking.\nFrom: Ningbo\nTo: Los Angeles\nETD: 5 May\nThanks"
    assert split_message(body).new == body
