"""Key positions: every key of a valid TOML file is found on the line it is written, however it is written."""

from __future__ import annotations

import tomllib

from mailbot.core.rules.positions import key_lines, line_of

TRICKY = '''\
# [[rule]] in a comment is not a rule
[word_lists]
legal = [
  "lawyer",   # a comment inside a list
  "court",
]

[[rule]]
name = "first"
description = """
name = "not a key"
[[rule]]
"""
when.intent = ["cancellation"]
when."sender_domain" = 'a.example'
then = { category = "c", tags = ["x", "y"] }

[[rule]]
'name' = "second \\" [[rule]] \\\\"
description = \'\'\'literal with "quotes" and \\ backslash\'\'\'

[rule.when]
header = { "X-Mailer" = "^SAP", "List-Id" = "" }

[rule.then]
category = "d"
'''


def test_the_tricky_file_is_valid_toml() -> None:
    data = tomllib.loads(TRICKY)
    assert [r["name"] for r in data["rule"]] == ["first", 'second " [[rule]] \\']


def test_keys_are_found_on_their_lines() -> None:
    lines = key_lines(TRICKY)
    assert lines[("word_lists", "legal")] == 3
    assert lines[("word_lists", "legal", 1)] == 5
    assert lines[("rule", 0)] == 8
    assert lines[("rule", 0, "name")] == 9
    assert lines[("rule", 0, "when", "intent")] == 14
    assert lines[("rule", 0, "when", "sender_domain")] == 15
    assert lines[("rule", 0, "then", "tags")] == 16
    assert lines[("rule", 1)] == 18
    assert lines[("rule", 1, "name")] == 19
    assert lines[("rule", 1, "when")] == 22
    assert lines[("rule", 1, "when", "header", "List-Id")] == 23
    assert lines[("rule", 1, "then", "category")] == 26


def test_text_inside_strings_and_comments_is_never_taken_for_a_key() -> None:
    lines = key_lines(TRICKY)
    assert ("rule", 2) not in lines
    assert len([path for path in lines if path[:1] == ("rule",) and len(path) == 2]) == 2


def test_every_key_in_the_parsed_data_has_a_line() -> None:
    lines = key_lines(TRICKY)

    def walk(value: object, path: tuple[str | int, ...]) -> None:
        if path:
            assert path in lines, path
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(tomllib.loads(TRICKY), ())


def test_a_path_inside_a_value_falls_back_to_the_line_of_its_key() -> None:
    lines = key_lines("a = 1\nb = { c = { d = 2 } }\n")
    assert line_of(lines, ("b", "c", "d", 0, "deeper")) == 2
    assert line_of(lines, ("missing",)) is None
