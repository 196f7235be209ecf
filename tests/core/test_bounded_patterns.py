"""Supervisors' patterns: matched by RE2 in linear time, with Unicode classes, or refused in plain words."""

from __future__ import annotations

import pytest

from mailbot.core.bounded_patterns import PatternBank, PatternProblem, bounded


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(\w+) \1", "uses a back-reference, which cannot be matched in bounded time"),
        (r"(?P<w>a)(?P=w)", "uses a back-reference, which cannot be matched in bounded time"),
        (r"cancel(?=led)", "uses a look-ahead or look-behind, which cannot be matched in bounded time"),
        (r"(?<!not )cancel", "uses a look-ahead or look-behind, which cannot be matched in bounded time"),
        (
            r"a++",
            "uses an atomic group or a possessive quantifier, which the bounded matcher does not support",
        ),
        (r"(?x) a b", "uses a comment or the verbose flag (?x), which the bounded matcher does not support"),
        (r"a{2000}", "repeats something more than 1000 times, which the bounded matcher does not allow"),
        (r"(urgent", "not a valid pattern: missing ), unterminated subpattern at position 0"),
        ("", "the pattern is empty"),
    ],
)
def test_a_pattern_that_cannot_be_bounded_is_refused_in_plain_words(pattern: str, reason: str) -> None:
    with pytest.raises(PatternProblem) as raised:
        bounded(pattern)
    assert raised.value.message == reason


def test_nested_quantifiers_answer_at_once() -> None:
    assert bounded("(a+)+$").search("a" * 41 + "!") is None
    assert bounded("^(a+)+!$").search("a" * 41 + "!") is not None


def test_word_digit_and_space_classes_cover_every_script() -> None:
    found = bounded(r"\w+\s\d+").search("заказ\u00a0١٢٣")
    assert found is not None and found.group(0) == "заказ\u00a0١٢٣"
    assert bounded(r"[\w-]+").search("—订单号-A—").group(0) == "订单号-A"  # type: ignore[union-attr]


def test_end_of_text_is_written_as_in_python() -> None:
    assert bounded(r"urgent\Z").search("so urgent") is not None
    assert bounded(r"urgent\Z").search("urgent or not") is None


def test_case_is_ignored_in_every_script_when_asked() -> None:
    assert bounded("ÉTÉ|ОТМЕНА", ignore_case=True).search("été") is not None
    assert bounded("ОТМЕНА", ignore_case=True).search("отмена") is not None
    assert bounded("ОТМЕНА").search("отмена") is None


def test_a_bank_answers_which_patterns_match_like_each_pattern_alone() -> None:
    sources = [r"^urgent", r"order\s*#?\d+", r"(a+)+$", r"отмен\w*", r"never"]
    bank = PatternBank(ignore_case=True)
    patterns = [bounded(s, ignore_case=True) for s in sources]
    for pattern in patterns:
        bank.add(pattern)
    for text in ["URGENT: order #12", "aaaa", "Прошу ОТМЕНИТЬ", "", "nothing here"]:
        alone = {i for i, p in enumerate(patterns) if p.search(text) is not None}
        assert bank.matching(text) == alone, text


def test_a_bank_takes_patterns_added_after_its_first_use() -> None:
    bank = PatternBank()
    bank.add(bounded("first"))
    assert bank.matching("first second") == {0}
    bank.add(bounded("second"))
    assert bank.matching("first second") == {0, 1}
