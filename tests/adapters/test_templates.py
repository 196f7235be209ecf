"""Reply templates: each shipped one renders in every language, the sandbox holds, validation finds lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from mailbot.adapters.templates import (
    ReplyTemplateNotFound,
    TemplateRenderError,
    TemplateStore,
    TemplateTooLarge,
    main,
    sample_context,
)

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
REPLY_NAMES = {
    "cancellation_received", "report_dispute_received", "order_number_missing", "acknowledgement",
    "status_inquiry", "add_service", "payment_question", "general_question", "follow_up_received",
}
LANGUAGES = {"en", "es", "pt", "fr", "ru", "zh", "ar", "de", "tr", "id", "vi", "it", "ja", "ko", "pl"}
PAIRS = sorted((lang, name) for lang in LANGUAGES for name in REPLY_NAMES)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> TemplateStore:
    return TemplateStore(SHIPPED)


# -- the shipped templates ------------------------------------------------------------------------


def test_shipped_templates_validate_without_problems(shipped: TemplateStore) -> None:
    assert [str(p) for p in shipped.validate()] == []


def test_shipped_names_are_the_nine_replies_in_every_language(shipped: TemplateStore) -> None:
    assert shipped.names() == REPLY_NAMES
    assert shipped.languages() == LANGUAGES
    for lang in LANGUAGES:
        assert {p.name.removesuffix(".txt.j2") for p in (SHIPPED / lang).glob("[!_]*.txt.j2")} == REPLY_NAMES


@pytest.mark.parametrize(("language", "name"), PAIRS)
def test_shipped_template_names_case_and_orders(shipped: TemplateStore, language: str, name: str) -> None:
    context = sample_context(orders=("240517893301234567", "240517893309876543"), language=language)
    reply = shipped.render(name, language, context)
    assert (reply.language, reply.template) == (language, name)
    assert "K7Q2XZ" in reply.text
    assert "240517893301234567" in reply.text and "240517893309876543" in reply.text
    assert "ta-pm@example.com" in reply.text  # the signature
    assert reply.html is None


@pytest.mark.parametrize(("language", "name"), PAIRS)
def test_shipped_template_reads_well_without_orders_or_buyer_name(
    shipped: TemplateStore, language: str, name: str
) -> None:
    context = sample_context(orders=(), buyer_name="", service="Inspection", language=language)
    text = shipped.render(name, language, context).text
    assert "K7Q2XZ" in text
    assert "None" not in text and "[]" not in text
    assert "ta-inspection@example.com" in text
    assert "\n\n\n" not in text and "  " not in text
    assert text.endswith("\n") and not text.endswith("\n\n") and text[0].strip()


def test_header_comment_is_stripped_and_text_is_tidy(shipped: TemplateStore) -> None:
    text = shipped.render("acknowledgement", "en", sample_context()).text
    assert text.startswith("Dear Ana Lima,\n\n")
    assert "{#" not in text and "Variables" not in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_only_one_order_is_named_in_the_singular(shipped: TemplateStore) -> None:
    text = shipped.render("acknowledgement", "en", sample_context(orders=("240517893301234567",))).text
    assert "Trade Assurance order: 240517893301234567\n" in text


# -- language choice ------------------------------------------------------------------------------


def test_missing_language_falls_back_to_english(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "Case {{ case_ref }}\n")
    write(tmp_path, "fr/other.txt.j2", "Dossier {{ case_ref }}\n")
    reply = TemplateStore(tmp_path).render("hello", "fr", sample_context())
    assert (reply.language, reply.text) == ("en", "Case K7Q2XZ\n")


def test_unknown_language_code_falls_back_to_english(shipped: TemplateStore) -> None:
    assert shipped.render("acknowledgement", "xx", sample_context()).language == "en"
    assert shipped.render("acknowledgement", "", sample_context()).language == "en"


def test_regional_language_tag_uses_its_base_language(shipped: TemplateStore) -> None:
    assert shipped.render("acknowledgement", "pt-BR", sample_context()).language == "pt"
    assert shipped.render("acknowledgement", "ZH_cn", sample_context()).language == "zh"


def test_partials_come_from_the_language_actually_used(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", '{% include "_sig.txt.j2" %}\n')
    write(tmp_path, "en/_sig.txt.j2", "Regards\n")
    write(tmp_path, "de/_sig.txt.j2", "Grüße\n")
    write(tmp_path, "_partials/_footer.txt.j2", "shared\n")
    write(tmp_path, "de/hello.txt.j2", '{% include "_sig.txt.j2" %}\n{% include "_footer.txt.j2" %}\n')
    store = TemplateStore(tmp_path)
    assert store.render("hello", "de", sample_context()).text == "Grüße\nshared\n"
    assert store.render("hello", "fr", sample_context()).text == "Regards\n"


def test_unknown_template_is_a_clear_error(shipped: TemplateStore) -> None:
    with pytest.raises(ReplyTemplateNotFound, match=r"looked for fr/no_such\.txt\.j2 and en/no_such\."):
        shipped.render("no_such", "fr", sample_context())


@pytest.mark.parametrize("name", ["../secrets", "en/acknowledgement", "_greeting", "Acknowledgement", ""])
def test_names_that_are_not_reply_templates_are_refused(shipped: TemplateStore, name: str) -> None:
    with pytest.raises(ReplyTemplateNotFound):
        shipped.render(name, "en", sample_context())


def test_names_and_languages_ignore_partials(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "x\n")
    write(tmp_path, "en/_sig.txt.j2", "x\n")
    write(tmp_path, "_partials/_footer.txt.j2", "x\n")
    write(tmp_path, "fr/_sig.txt.j2", "x\n")
    store = TemplateStore(tmp_path)
    assert store.names() == {"hello"}
    assert store.languages() == {"en"}


# -- sandbox and escaping -------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    '{{ "{0.__class__}".format(case_ref) }}',
    "{{ case_ref|attr('__class__') }}",
    "{{ 'x' * 200001 }}",
    "{{ 2 ** 100000 }}",
])
def test_sandbox_refuses_escapes_and_bombs(tmp_path: Path, source: str) -> None:
    write(tmp_path, "en/evil.txt.j2", source + "\n")
    with pytest.raises(TemplateRenderError, match=r"evil\.txt\.j2:1") as caught:
        TemplateStore(tmp_path).render("evil", "en", sample_context())
    assert isinstance(caught.value.__cause__, SecurityError)


def test_html_sibling_is_escaped_and_text_is_not(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "Dear {{ buyer_name }}\n")
    write(tmp_path, "en/hello.html.j2", "<p>Dear {{ buyer_name }}</p>\n")
    reply = TemplateStore(tmp_path).render("hello", "en", sample_context(buyer_name="<b>Ann & Co</b>"))
    assert reply.text == "Dear <b>Ann & Co</b>\n"
    assert reply.html == "<p>Dear &lt;b&gt;Ann &amp; Co&lt;/b&gt;</p>\n"


def test_control_characters_from_the_buyer_never_reach_the_body(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "Dear {{ buyer_name }}\n")
    reply = TemplateStore(tmp_path).render("hello", "en", sample_context(buyer_name="Ann\r\nBcc: x@evil\x00"))
    assert reply.text == "Dear Ann\nBcc: x@evil\n"  # only ever a body line, never a header


def test_undefined_variable_at_render_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "{# header #}\nHello\n{{ buyer_nmae }}\n")
    with pytest.raises(TemplateRenderError, match=r"hello\.txt\.j2:3: unknown variable 'buyer_nmae'; did"):
        TemplateStore(tmp_path).render("hello", "en", sample_context())


def test_a_reply_that_renders_empty_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "{% if orders %}Orders{% endif %}\n")
    with pytest.raises(TemplateRenderError, match="empty"):
        TemplateStore(tmp_path).render("hello", "en", sample_context(orders=()))


def test_template_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "en/big.txt.j2", "x" * 2_001)
    write(tmp_path, "en/uses_big.txt.j2", '{% include "big.txt.j2" %}\n')
    store = TemplateStore(tmp_path, max_template_bytes=2_000)
    with pytest.raises(TemplateTooLarge, match="2001 bytes"):
        store.render("big", "en", sample_context())
    with pytest.raises(TemplateTooLarge):
        store.render("uses_big", "en", sample_context())
    problems = [p for p in store.validate() if p.file.name == "big.txt.j2"]
    assert [(p.line, p.message) for p in problems] == [(None, "2001 bytes, over the limit of 2000")]


def test_template_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path, "secret.txt", "password\n")
    (tmp_path / "templates" / "en").mkdir(parents=True)
    (tmp_path / "templates" / "en" / "leak.txt.j2").symlink_to(outside)
    with pytest.raises(TemplateRenderError, match="outside"):
        TemplateStore(tmp_path / "templates").render("leak", "en", sample_context())


# -- validate() -----------------------------------------------------------------------------------


def test_validate_reports_syntax_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, "en/broken.txt.j2", "{# header #}\nHello\n{% if orders %}\nno endif\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert (problem.file, problem.line) == (path, 4)
    assert problem.message.startswith("syntax error:")
    assert str(problem) == f"{path}:4: {problem.message}"


def test_validate_reports_unknown_filter_as_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "en/broken.txt.j2", "x\n{{ case_ref|shout }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 2 and "shout" in problem.message


def test_validate_reports_unknown_variable_with_line_and_suggestion(tmp_path: Path) -> None:
    write(tmp_path, "en/typo.txt.j2", "{#\n header\n#}\nDear {{ buyer_name }},\ncase {{ case_reff }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 5
    assert problem.message == "unknown variable 'case_reff'; did you mean 'case_ref'?"


def test_validate_finds_unknown_variable_in_a_branch_the_samples_never_take(tmp_path: Path) -> None:
    write(tmp_path, "en/typo.txt.j2", 'x\n{% if service == "Other" %}\n{{ mailbox }}\n{% endif %}\n')
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 3
    assert problem.message == "unknown variable 'mailbox'; did you mean 'mailbox_address'?"


def test_validate_lists_known_variables_when_nothing_is_close(tmp_path: Path) -> None:
    write(tmp_path, "en/typo.txt.j2", "{{ zzz }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert "known variables: case_ref, orders" in problem.message


def test_validate_accepts_loop_and_set_variables(tmp_path: Path) -> None:
    write(tmp_path, "en/ok.txt.j2", "{% set n = orders|length %}{% for o in orders %}{{ loop.index }} {{ o }}"
          "{% endfor %}{{ n }} {{ order or '-' }}\n")
    assert TemplateStore(tmp_path).validate() == []


def test_validate_reports_sandbox_violation_with_line(tmp_path: Path) -> None:
    write(tmp_path, "en/evil.txt.j2", "Hello\n{{ case_ref.__class__ }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 2 and problem.message.startswith("sandbox:")


def test_validate_reports_runtime_errors_with_line(tmp_path: Path) -> None:
    write(tmp_path, "en/attr.txt.j2", "Hello\n\n{{ case_ref.uper() }}\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 3 and "uper" in problem.message


def test_validate_reports_missing_english_version(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "x\n")
    path = write(tmp_path, "fr/bonjour.txt.j2", "x\n")
    (problem,) = TemplateStore(tmp_path).validate()
    assert (problem.file, problem.line) == (path, None)
    assert "en/bonjour.txt.j2" in problem.message


def test_validate_reports_missing_partial_at_the_include_line(tmp_path: Path) -> None:
    write(tmp_path, "en/hello.txt.j2", "x\n")
    write(tmp_path, "fr/hello.txt.j2", 'Bonjour\n{% include "_signature.txt.j2" %}\n')
    (problem,) = TemplateStore(tmp_path).validate()
    assert problem.line == 2 and "_signature.txt.j2" in problem.message


def test_validate_reports_a_broken_partial_once(tmp_path: Path) -> None:
    write(tmp_path, "en/a.txt.j2", 'a\n{% include "_sig.txt.j2" %}\n')
    write(tmp_path, "en/b.txt.j2", 'b\n{% include "_sig.txt.j2" %}\n')
    write(tmp_path, "en/_sig.txt.j2", "{% if %}\n")
    problems = TemplateStore(tmp_path).validate()
    assert [(p.file.name, p.line) for p in problems] == [("_sig.txt.j2", 1)]


def test_validate_reports_html_without_text_and_badly_named_files(tmp_path: Path) -> None:
    write(tmp_path, "en/only.html.j2", "<p>x</p>\n")
    write(tmp_path, "en/Bad-Name.txt.j2", "x\n")
    write(tmp_path, "en/notes.j2", "x\n")
    messages = sorted(p.message for p in TemplateStore(tmp_path).validate())
    assert messages == [
        "names use lowercase letters, digits and _ only",
        "needs a plain-text only.txt.j2 next to it",
        "template files end in .txt.j2 or .html.j2",
    ]


def test_validate_reports_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "latin.txt.j2").write_bytes("Grüße\n".encode("latin-1"))
    (problem,) = TemplateStore(tmp_path).validate()
    assert "not UTF-8" in problem.message


def test_validate_reports_missing_folder(tmp_path: Path) -> None:
    (problem,) = TemplateStore(tmp_path / "nope").validate()
    assert "does not exist" in problem.message


def test_edits_are_picked_up_without_a_restart(tmp_path: Path) -> None:
    path = write(tmp_path, "en/hello.txt.j2", "one\n")
    store = TemplateStore(tmp_path)
    assert store.render("hello", "en", sample_context()).text == "one\n"
    path.write_text("two, longer\n", encoding="utf-8")
    assert store.render("hello", "en", sample_context()).text == "two, longer\n"


# -- the supervisor's command ---------------------------------------------------------------------


def test_check_command_exits_nonzero_and_prints_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "en/typo.txt.j2", "x\n{{ case_reff }}\n")
    assert main(["--dir", str(tmp_path), "check"]) == 1
    assert "typo.txt.j2:2: unknown variable 'case_reff'" in capsys.readouterr().out
    assert main(["--dir", str(SHIPPED), "check"]) == 0


def test_preview_command_renders_with_the_sample_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(SHIPPED), "preview", "status_inquiry", "--language", "de", "--no-orders"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- status_inquiry (de) ---\nGuten Tag Ana Lima,")
    assert "K7Q2XZ" in out
