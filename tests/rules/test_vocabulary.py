"""Per-language vocabulary is data under rules/: subject prefixes in the lexicons, scripts in scripts.toml.

A supervisor adds a language by editing files: each test changes a copy of the shipped rules the
way docs/rules.md tells a supervisor to, and checks that mailbot reads mail differently for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import routing_version
from mailbot.cli.rules_cmd import rules as rules_cli
from mailbot.core.errors import RuleFileError
from mailbot.core.parse import parse
from mailbot.core.reading import read
from mailbot.core.replies import plan_reply
from mailbot.core.types import Identity

from .conftest import REPO

EML = REPO / "tests" / "eml"
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no mailbot.toml of the developer's is picked up by `rules check`
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    copy = tmp_path / "rules"
    shutil.copytree(REPO / "rules", copy)
    return copy


def add_line(path: Path, after: str, line: str) -> None:
    """Put `line` under the line that starts with `after`, as a supervisor would."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, text in enumerate(lines) if text.startswith(after))
    lines.insert(index + 1, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def add_section(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write("\n" + text + "\n")


def reply_subject(subject: str, rules_dir: Path) -> str:
    prefixes = load_reading_config(rules_dir).subjects
    mail = parse(f"From: b@buyer.example\nSubject: {subject}\nMessage-ID: <a@b>\n\nx\n".encode())
    plan = plan_reply(
        mail,
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="pl",
        identity=US,
        seed="s",
        prefixes=prefixes,
    )
    return plan.subject


def test_a_polish_reply_prefix_in_the_lexicon_is_recognised_as_a_reply(rules: Path) -> None:
    config = load_reading_config(rules)
    assert config.subjects.is_reply("Odp: anulowanie inspekcji")
    assert config.automation.subjects.is_reply("ODP: anulowanie inspekcji")
    assert config.intents.subjects.is_reply("odp[2]: anulowanie inspekcji")


def test_a_reply_prefix_added_to_a_lexicon_is_stripped_from_our_reply_subject(rules: Path) -> None:
    assert reply_subject("返信: 検品のキャンセル", rules) == "Re: [Case #K7Q2XZ] 返信: 検品のキャンセル"
    add_section(rules / "lexicons" / "ja.toml", '[subject]\nreply_prefixes = ["返信"]')
    assert reply_subject("返信: 検品のキャンセル", rules) == "Re: [Case #K7Q2XZ] 検品のキャンセル"


def test_a_forward_prefix_added_to_a_lexicon_makes_the_header_block_forwarded_content(rules: Path) -> None:
    raw = (EML / "vocabulary-forward-ja.eml").read_bytes()
    before = read(raw, identity=US, config=load_reading_config(rules)).mail
    assert "162534987612345" in before.quoted_text and not before.forwarded_text
    add_section(rules / "lexicons" / "ja.toml", '[subject]\nforward_prefixes = ["転送"]')
    after = read(raw, identity=US, config=load_reading_config(rules)).mail
    assert "162534987612345" in after.forwarded_text and not after.quoted_text


def test_a_language_with_its_own_script_is_a_data_change(rules: Path) -> None:
    """The script decides even when none of the language's few stopwords is in the mail."""
    raw = (EML / "vocabulary-georgian.eml").read_bytes()
    lexicon = 'language = "ka"\nname = "Georgian"\n\n[detect]\nstopwords = ["და"]\n'
    (rules / "lexicons" / "ka.toml").write_text(lexicon, encoding="utf-8")
    assert read(raw, identity=US, config=load_reading_config(rules)).language == "en"
    add_section(
        rules / "scripts.toml", '[scripts.georgian]\nranges = ["10A0-10FF", "2D00-2D2F"]\nlanguage = "ka"'
    )
    assert read(raw, identity=US, config=load_reading_config(rules)).language == "ka"


def test_the_script_ranges_are_part_of_the_rule_set_version(rules: Path) -> None:
    before = routing_version(rules)
    scripts = rules / "scripts.toml"
    scripts.write_text(scripts.read_text(encoding="utf-8").replace('"0590-05FF"', '"0590-05FE"'))
    assert routing_version(rules) not in (None, before)


def test_a_subject_prefix_is_part_of_the_rule_set_version(rules: Path) -> None:
    before = routing_version(rules)
    add_line(rules / "lexicons" / "pl.toml", "[subject]", 'forward_prefixes = ["pd", "przekaż"]')
    assert routing_version(rules) not in (None, before)


def line_of(path: Path, start: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(start))


def test_rules_check_names_file_and_line_of_a_bad_script_range(rules: Path) -> None:
    scripts = rules / "scripts.toml"
    scripts.write_text(scripts.read_text(encoding="utf-8").replace('"0400-052F"', '"0400-cyrillic"'))
    result = CliRunner().invoke(rules_cli, ["check", str(rules)])
    assert result.exit_code == 1
    line = line_of(scripts, 'ranges = ["0400')
    where = f"{scripts}:{line}: scripts.cyrillic.ranges:"
    assert where in result.output and "'0400-cyrillic'" in result.output


def test_rules_check_names_file_and_line_of_a_prefix_written_with_its_colon(rules: Path) -> None:
    lexicon = rules / "lexicons" / "pl.toml"
    lexicon.write_text(lexicon.read_text(encoding="utf-8").replace('["odp"]', '["odp:"]'))
    result = CliRunner().invoke(rules_cli, ["check", str(rules)])
    assert result.exit_code == 1
    where = f"{lexicon}:{line_of(lexicon, 'reply_prefixes')}: subject.reply_prefixes:"
    assert where in result.output and "without ':'" in result.output


def test_two_scripts_claiming_one_character_are_refused(rules: Path) -> None:
    add_section(rules / "scripts.toml", '[scripts.ukrainian]\nranges = ["0404-0457"]\nlanguage = "uk"')
    with pytest.raises(
        RuleFileError, match=r"scripts\.ukrainian\.ranges: overlaps a range of scripts\.cyrillic"
    ):
        load_reading_config(rules)


def test_a_rule_set_without_the_scripts_file_is_refused(rules: Path) -> None:
    (rules / "scripts.toml").unlink()
    with pytest.raises(RuleFileError, match=r"scripts\.toml: the writing systems file is missing"):
        load_reading_config(rules)
