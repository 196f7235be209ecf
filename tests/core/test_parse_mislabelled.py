"""No silent mojibake: mislabelled charsets, unusable charset labels and CR-only mbox files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.core.parse import decode_bytes, parse

EML = Path(__file__).resolve().parents[1] / "eml"


def load(name: str) -> bytes:
    return (EML / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "words", "detected"),
    [
        ("charset-gbk-declared-latin1.eml", "我想取消订单 2603 0412 7788 5521 的生产监控服务", "gb18030"),
        ("charset-big5-declared-latin1.eml", "請問訂單 2603 0498 1123 4410 的驗貨報告", "big5"),
        ("charset-sjis-declared-latin1.eml", "注文番号 2603 0455 6612 9087 の検品サービス", "shift_jis"),
        ("charset-cp1251-declared-latin1.eml", "Прошу отменить услугу контроля производства", "windows-1251"),
    ],
)
def test_double_byte_or_cyrillic_text_declared_latin1_is_re_decoded_with_a_defect(
    name: str, words: str, detected: str
) -> None:
    mail = parse(load(name))
    assert words in mail.text
    assert any(
        "declared iso-8859-1 reads as mojibake" in d and f"re-decoded as {detected}" in d
        for d in mail.defects
    )


def test_real_latin1_text_with_accented_pairs_stays_latin1_without_a_defect() -> None:
    mail = parse(load("charset-latin1-portuguese.eml"))
    assert "a situação da inspeção do pedido 2603 0421 5567 8802" in mail.text
    assert "Conceição" in mail.text
    assert not any("mojibake" in d for d in mail.defects)


def test_a_single_run_of_umlauts_is_not_taken_for_mojibake() -> None:
    decoded = decode_bytes("Prüfung: äöüßÄÖÜß bitte bestätigen".encode("latin-1"), "iso-8859-1")
    assert decoded.text == "Prüfung: äöüßÄÖÜß bitte bestätigen"
    assert decoded.defect is None


@pytest.mark.parametrize("label", ["idna", "punycode", "undefined"])
def test_a_codec_that_is_no_charset_does_not_blank_the_mail(label: str) -> None:
    mail = parse(load(f"charset-label-{label}.eml"))
    assert mail.from_addr == "maria.lopez@cancun-goods.example"
    assert mail.from_name == "María López"
    assert mail.subject == "Estado del pedido – inspección"
    assert "¿cuál es el estado de la inspección del pedido 2603 0477 1234 5678?" in mail.text
    assert f"charset: unusable charset label {label!r}" in mail.defects


def test_a_charset_label_with_a_nul_does_not_blank_the_mail() -> None:
    mail = parse(load("charset-label-nul.eml"))
    assert mail.from_addr == "maria.lopez@cancun-goods.example"
    assert mail.subject == "Order status"
    assert "order 2603 0477 1234 5678? Gracias – María" in mail.text
    assert any(d.startswith("charset: unusable charset label") for d in mail.defects)


def test_cr_only_file_starting_with_an_mbox_line_keeps_headers_and_body() -> None:
    mail = parse(load("mbox-cr-only.eml"))
    assert mail.from_addr == "maria.lopez@cancun-goods.example"
    assert mail.subject == "Inspection status"
    assert mail.message_id == "cr.1@cancun-goods.example"
    assert "order 2603 0477 1234 5678" in mail.text
    assert mail.defects == ("mbox 'From ' line before the headers",)
