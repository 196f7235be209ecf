"""load_reading_config: the shipped rules load, and a supervisor's mistake is named by file, line and key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.errors import RuleFileError
from mailbot.core.types import Intent

RULES = Path(__file__).resolve().parents[2] / "rules"
REQUIRED = ("en", "es", "pt", "fr", "de", "ru", "ar", "zh", "tr", "vi", "id")


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(RULES / "orders.toml", target / "orders.toml")
    shutil.copy(RULES / "scripts.toml", target / "scripts.toml")
    shutil.copytree(RULES / "lexicons", target / "lexicons")
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(
        n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line
    )


def test_the_shipped_rules_load_with_every_required_language() -> None:
    config = load_reading_config(RULES)
    assert set(REQUIRED) <= set(config.languages)
    for language in REQUIRED:
        assert any(lang == language for lang, _ in config.orders.context_words), language
        assert any(p.language == language for p in config.intents.phrases), language
        assert any(lang == language for lang, _ in config.automation.out_of_office_subjects), language
        assert any(p.language == language and p.stopwords for p in config.profiles), language
        assert any(p.language == language for p in config.intents.service_words), language
    not_from_phrases = {Intent.FOLLOW_UP, Intent.AUTO_REPLY, Intent.BOUNCE, Intent.OFF_TOPIC}
    assert {p.tag for p in config.intents.phrases} == {i.value for i in Intent if i not in not_from_phrases}
    assert config.orders.min_digits == 12 and config.orders.max_digits == 20


def test_a_phrase_list_of_the_wrong_type_names_file_line_and_key(rules: Path) -> None:
    path = rules / "lexicons" / "fr.toml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(
        r"\[intents\.cancellation\]\nphrases = \[.*?\n\]",
        '[intents.cancellation]\nphrases = "annuler"',
        text,
        flags=re.S,
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    error = caught.value
    assert error.path == str(path)
    assert error.key == "intents.cancellation.phrases"
    assert error.line == line_of(path, 'phrases = "annuler"')
    assert (
        str(error)
        == f"{path}:{error.line}: intents.cancellation.phrases: expected a list of phrases"
    )


def test_a_bad_phrase_entry_points_at_its_line(rules: Path) -> None:
    path = rules / "lexicons" / "de.toml"
    edit(path, '{ text = "kündigen", weight = 2 }', '{ text = "kündigen", weight = "viel" }')
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert caught.value.key == "intents.cancellation.phrases"
    assert caught.value.line == line_of(path, 'weight = "viel"')
    assert "weight must be a number" in caught.value.message


def test_an_unknown_key_is_an_error_not_silently_ignored(rules: Path) -> None:
    path = rules / "lexicons" / "es.toml"
    edit(path, "[orders]\n", "[orders]\ncontex = []\n")
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert caught.value.key == "orders.contex"
    assert caught.value.line == line_of(path, "contex = []")


def test_a_bad_service_word_names_file_line_and_key(rules: Path) -> None:
    path = rules / "lexicons" / "en.toml"
    edit(path, '"production monitoring", ', "42, ")
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert caught.value.path == str(rules / "lexicons" / "en.toml")
    assert caught.value.key == "service.words"
    assert caught.value.line == line_of(path, "42, ")
    assert "expected a list of strings" in caught.value.message


def test_machine_intents_cannot_be_given_phrases(rules: Path) -> None:
    edit(
        rules / "lexicons" / "en.toml",
        "[intents.spam]",
        '[intents.bounce]\nphrases = ["x"]\n\n[intents.spam]',
    )
    with pytest.raises(RuleFileError, match="decided from headers"):
        load_reading_config(rules)


def test_a_toml_syntax_error_carries_its_line(rules: Path) -> None:
    path = rules / "lexicons" / "tr.toml"
    edit(path, 'language = "tr"', 'language = "tr')
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert caught.value.line == line_of(path, 'language = "tr')
    assert caught.value.message.startswith("TOML syntax: ")


def test_the_language_must_match_the_file_name(rules: Path) -> None:
    edit(rules / "lexicons" / "vi.toml", 'language = "vi"', 'language = "vn"')
    with pytest.raises(RuleFileError, match='expected language = "vi"'):
        load_reading_config(rules)


def test_a_decoy_pattern_that_does_not_compile_is_reported(rules: Path) -> None:
    path = rules / "orders.toml"
    edit(path, "regex = '\\b1Z", "regex = '(\\b1Z")
    with pytest.raises(RuleFileError) as caught:
        load_reading_config(rules)
    assert caught.value.path == str(rules / "orders.toml")
    assert caught.value.key == "decoy_patterns[1].regex"
    assert caught.value.line == line_of(path, "regex = '(\\b1Z")


def test_impossible_lengths_are_reported(rules: Path) -> None:
    edit(rules / "orders.toml", "min_digits = 12", "min_digits = 30")
    with pytest.raises(RuleFileError, match="larger than max_digits"):
        load_reading_config(rules)


def test_a_supervisor_can_add_a_language_with_a_new_file(rules: Path) -> None:
    (rules / "lexicons" / "it.toml").write_text(
        'language = "it"\n[detect]\nstopwords = ["il", "della", "grazie"]\n'
        '[orders]\ncontext = ["ordine"]\n[intents.cancellation]\nphrases = ["annullare"]\n',
        encoding="utf-8",
    )
    config = load_reading_config(rules)
    assert "it" in config.languages
    assert ("it", "ordine") in config.orders.context_words


def test_no_lexicons_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="no lexicon files"):
        load_reading_config(tmp_path)
