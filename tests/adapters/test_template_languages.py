"""Every language mailbot can detect is answered in that language, with the same replies as English."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.adapters.templates import TemplateStore, sample_context

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
LEXICON_LANGUAGES = sorted(p.stem for p in (ROOT / "rules" / "lexicons").glob("*.toml"))
# Translations name the service in their own words; English uses the variable as it is.
TRANSLATION_ONLY = {"_service.txt.j2"}


def template_files(language: str) -> set[str]:
    folder = TEMPLATES / language
    return {p.name for p in folder.glob("*.j2")} if folder.is_dir() else set()


def test_the_lexicon_languages_are_the_fifteen_known_ones() -> None:
    assert len(LEXICON_LANGUAGES) == 15


@pytest.mark.parametrize("language", [lang for lang in LEXICON_LANGUAGES if lang != "en"])
def test_each_lexicon_language_has_exactly_the_english_template_set(language: str) -> None:
    assert template_files(language) - TRANSLATION_ONLY == template_files("en")
    assert template_files(language) >= TRANSLATION_ONLY


@pytest.mark.parametrize("language", ["it", "ja", "ko", "pl"])
def test_new_languages_answer_in_their_own_language(language: str) -> None:
    store = TemplateStore(TEMPLATES)
    reply = store.render("status_inquiry", language, sample_context(language=language))
    english = store.render("status_inquiry", "en", sample_context(language="en"))
    assert reply.language == language
    assert "K7Q2XZ" in reply.text
    assert reply.text != english.text
