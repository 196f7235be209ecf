"""detect_language: the language of the sender's own text, offline, from the lexicons' profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.language import LanguageProfile, detect_language

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES)


def detect(text: str, allowed: tuple[str, ...] | None = None) -> str:
    return detect_language(text, allowed or CONFIG.languages, CONFIG.profiles, CONFIG.scripts)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Could you tell me when the inspection report will be uploaded? Thanks."),
        ("es", "Hola, quiero cancelar el servicio de inspección para mi pedido. Gracias."),
        ("pt", "Bom dia! Tenho dúvidas sobre o relatório do pedido, não aparece nenhuma foto."),
        ("fr", "Bonjour, nous avons un problème avec le rapport de la commande."),
        ("de", "Guten Tag, im Bericht zur Bestellung stimmen die Angaben nicht."),
        ("ru", "Добрый день. Отмените, пожалуйста, мониторинг производства по заказу."),
        ("ar", "مرحباً، حاولت دفع رسوم خدمة مراقبة الإنتاج لكن العملية رُفضت."),
        ("zh", "请帮我取消订单的验货，我们已经和供应商取消了这个订单。"),
        ("zh", "訂單號碼的報告和PI不符，內箱標籤都沒有拍到，請重新確認。"),
        ("ja", "注文の生産モニタリングレポートについて、数量がPIと合っていません。"),
        ("tr", "Merhabalar, sipariş için üretim takibi eklemek istiyoruz. Tedarikçi kabul etti."),
        ("vi", "Chào bạn, báo cáo của đơn hàng thiếu ảnh bao bì. Vui lòng xem lại giúp tôi."),
        ("id", "Halo kak, saya mau cancel production monitoring untuk order ini karena pesanan dibatalkan."),
        ("it", "Buongiorno, vorremmo aggiungere il controllo qualità all'ordine. Il fornitore è d'accordo."),
        ("ko", "안녕하세요, 주문번호 검수 보고서가 아직 업로드되지 않았습니다. 언제쯤 받을 수 있을까요?"),
    ],
)
def test_each_lexicon_language_is_recognised(language: str, text: str) -> None:
    assert detect(text) == language


def test_an_italian_mail_is_read_as_italian() -> None:
    # è, à and ù are French letters too, and "la", "non", "il" French words: Italian's own words decide.
    assert detect("Salve, la qualità è pessima e la quantità nel rapporto non è giusta. Saluti") == "it"
    assert detect("Buongiorno, il rapporto dell'ispezione è già disponibile? Grazie mille") == "it"
    assert detect("Bonjour, la qualité n'est pas bonne et la quantité est fausse. Merci") == "fr"
    assert detect("Hola, la calidad no es buena y la cantidad del informe es incorrecta. Gracias") == "es"


def test_a_korean_mail_is_read_as_korean() -> None:
    # Hangul points to Korean now that a Korean lexicon exists, English words and codes around it or not.
    assert detect("Hello, PI 기준으로 QC 보고서의 수량을 다시 확인해 주시겠어요? 감사합니다.") == "ko"
    assert detect("Please check the report for our order. Thanks. -- 김민수 드림 (Kim Minsu)") == "en"


def test_chinese_product_names_in_english_do_not_make_a_mail_chinese() -> None:
    assert detect("Please check the report for our 蓝牙耳机 order, the quantity is wrong.") == "en"


def test_no_letters_falls_back_to_english() -> None:
    assert detect("1625 3498 7612 345 +86 138") == "en"
    assert detect("") == "en"


def test_only_allowed_languages_are_returned() -> None:
    assert detect("Bonjour, merci pour le rapport.", ("en", "de")) in {"en", "de"}
    assert detect("请取消验货", ("en", "fr")) == "en"


def test_without_english_the_fallback_is_the_first_allowed_language() -> None:
    assert detect_language("12345", ("de", "fr"), CONFIG.profiles, CONFIG.scripts) == "de"


def test_two_languages_of_one_script_are_told_apart_by_their_profiles() -> None:
    profiles = (
        LanguageProfile("ru", frozenset({"и", "не", "что", "пожалуйста"})),
        LanguageProfile("uk", frozenset({"і", "що", "будь", "ласка", "не"})),
    )
    ukrainian = "будь ласка, скасуйте інспекцію, що ми замовили"
    russian = "пожалуйста, отмените инспекцию, что мы заказали"
    assert detect_language(ukrainian, ("ru", "uk"), profiles, CONFIG.scripts) == "uk"
    assert detect_language(russian, ("ru", "uk"), profiles, CONFIG.scripts) == "ru"


def test_urls_and_addresses_do_not_count_as_words() -> None:
    assert detect("Merci! https://www.the-and-with-for.example/the/and nom@the-and.example") == "fr"
