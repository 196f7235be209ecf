"""Rule tests: what supervisors expect the rules to do with a given mail (rules/tests/*.toml).

A test names a mail (an .eml file, or a few snippets: from, subject, body, headers) and what should
happen to it: the category, the reply template, whether a reply goes out at all, the outcome. The
same files run in `mailbot rules test` and in CI, so a rule change that breaks an expectation is
caught before it goes live. Parsing is pure; reading the .eml files is the adapter's job.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr
from typing import Any, Literal

from mailbot.core.errors import RuleFileError
from mailbot.core.rules.positions import Path, key_lines, line_of
from mailbot.core.rules.predicates import suggestion
from mailbot.core.rules.schema import PRIORITIES, RuleSetErrors, RuleSource, toml_problem
from mailbot.core.types import Intent, Outcome

#: Keys of one [[test]], with what each is for.
TEST_KEYS: Mapping[str, str] = {
    "name": "What the test checks, in a sentence; shown when it fails.",
    "eml": "A mail file, relative to the rules folder (rules/tests/mail/… is the place for them).",
    "from": 'Instead of a file: the sender, like "Ana Ruiz <ana@buyer.example>".',
    "to": "The recipient (default: the support address).",
    "subject": "The subject.",
    "body": "The text of the mail.",
    "headers": 'Extra headers, like { "Auto-Submitted" = "auto-replied" }.',
    "attachments": 'File names of attached files, like ["report.pdf"].',
    "mailbox": "The mailbox the mail arrives in (default: the file's mailbox = …).",
    "case": "The mail belongs to this existing case (a case reference like K7Q2XZ).",
    "expect": "What should happen (see the expect keys).",
}

#: What a test may expect.
EXPECT_KEYS: Mapping[str, str] = {
    "category": "The category the mail is filed under.",
    "template": "The reply template, or false for no reply.",
    "reply": "true: a reply goes out; false: none does.",
    "outcome": "routed, ignored or quarantined.",
    "priority": "low, normal, high or urgent.",
    "queue": "The queue or team.",
    "assignee": "The person.",
    "tags": "Tags the case must have (others may be there too).",
    "rule": "The rule that decides.",
    "intent": "What the mail was read as wanting.",
    "order_numbers": "The order numbers read from the mail, most relevant first.",
}

FILE_TEST_KEYS = ("mailbox", "test")
_SNIPPET_KEYS = ("from", "to", "subject", "body", "headers", "attachments")
_CASE_REF = re.compile(r"[A-Za-z2-9]{6}\Z")

#: A fixed date keeps snippet messages (and so their decisions) identical from run to run.
SNIPPET_DATE = "Mon, 02 Mar 2026 09:00:00 +0000"


@dataclass(frozen=True)
class Expectation:
    category: str | None = None
    template: str | Literal[False] | None = None  # False: expect no reply template
    reply: bool | None = None
    outcome: str | None = None
    priority: str | None = None
    queue: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()
    rule: str | None = None
    intent: str | None = None
    order_numbers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Snippet:
    from_: str = "buyer@buyer.example"
    to: str = "support@support.example"
    subject: str = ""
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleTest:
    name: str
    path: str  # the test file, as shown in messages
    line: int
    mailbox: str
    expect: Expectation
    case: str | None = None
    eml: str | None = None  # relative to the rules folder
    snippet: Snippet | None = None
    raw: bytes = b""  # the message itself, filled in by whoever reads the files

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse_rule_tests(
    source: RuleSource,
    *,
    known_templates: frozenset[str] | None = None,
    known_mailboxes: frozenset[str] | None = None,
) -> tuple[RuleTest, ...]:
    """The tests in one file; RuleSetErrors lists every mistake in it."""
    errors: list[RuleFileError] = []
    try:
        data = tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_problem(str(exc), source.text)
        raise RuleSetErrors([RuleFileError(source.path, line, None, message)]) from None
    lines = key_lines(source.text)
    parser = _TestParser(source, lines, errors, known_templates, known_mailboxes)
    for key in data:
        if key not in FILE_TEST_KEYS:
            parser.error((key,), key, f"unknown key '{key}'{suggestion(key, FILE_TEST_KEYS)}")
    default_mailbox = data.get("mailbox")
    if default_mailbox is not None:
        default_mailbox = parser.mailbox(default_mailbox, ("mailbox",), "mailbox")
    tests_raw = data.get("test", [])
    if isinstance(tests_raw, dict) or not isinstance(tests_raw, list):
        parser.error(("test",), "test", "each test starts with [[test]] (two square brackets)")
        tests_raw = []
    if not tests_raw and not errors:
        parser.error((), None, "there are no tests; add at least one [[test]] section")
    tests = []
    for index, raw in enumerate(tests_raw):
        test = parser.test(index, raw, default_mailbox)
        if test is not None:
            tests.append(test)
    if errors:
        raise RuleSetErrors(errors)
    return tuple(tests)


class _TestParser:
    def __init__(
        self,
        source: RuleSource,
        lines: dict[Path, int],
        errors: list[RuleFileError],
        known_templates: frozenset[str] | None,
        known_mailboxes: frozenset[str] | None,
    ) -> None:
        self.source = source
        self.lines = lines
        self.errors = errors
        self.known_templates = known_templates
        self.known_mailboxes = known_mailboxes

    def error(self, path: Path, key: str | None, message: str) -> None:
        line = line_of(self.lines, path) if path else 1
        self.errors.append(RuleFileError(self.source.path, line or 1, key, message))

    def mailbox(self, value: Any, path: Path, key: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, key, "expected the name of a mailbox")
            return None
        name = value.strip()
        if self.known_mailboxes is not None and name not in self.known_mailboxes:
            self.error(path, key, f"unknown mailbox '{name}'{suggestion(name, self.known_mailboxes)}")
            return None
        return name

    def test(self, index: int, raw: Any, default_mailbox: str | None) -> RuleTest | None:
        at: Path = ("test", index)
        if not isinstance(raw, dict):
            self.error(at, "test", "expected a [[test]] section")
            return None
        before = len(self.errors)
        name = raw.get("name")
        label = f"test #{index + 1}"
        if not isinstance(name, str) or not name.strip():
            self.error(
                (*at, "name") if "name" in raw else at,
                "name",
                f"{label}: every test needs a name saying what it checks",
            )
        else:
            label = f"test '{name.strip()}'"
        for key in raw:
            if key not in TEST_KEYS:
                hint = " (put it under expect)" if key in EXPECT_KEYS else suggestion(key, TEST_KEYS)
                self.error((*at, key), key, f"{label}: unknown key '{key}'{hint}")
        mailbox = default_mailbox
        if "mailbox" in raw:
            mailbox = self.mailbox(raw["mailbox"], (*at, "mailbox"), "mailbox")
        elif mailbox is None:
            self.error(
                at,
                "mailbox",
                f"{label}: say which mailbox the mail arrives in "
                '(mailbox = "pm" at the top of the file, or in the test)',
            )
        case = raw.get("case")
        if case is not None and (not isinstance(case, str) or not _CASE_REF.fullmatch(case.strip(" #[]"))):
            self.error((*at, "case"), "case", f"{label}: expected a case reference of six letters and digits")
            case = None
        eml = raw.get("eml")
        snippet_keys = [k for k in _SNIPPET_KEYS if k in raw]
        snippet: Snippet | None = None
        if eml is not None and snippet_keys:
            self.error(
                (*at, snippet_keys[0]),
                snippet_keys[0],
                f"{label}: give either eml or snippets ({', '.join(snippet_keys)}), not both",
            )
        elif eml is not None:
            if not isinstance(eml, str) or not eml.strip():
                self.error((*at, "eml"), "eml", f"{label}: expected the path of a mail file")
        elif snippet_keys:
            snippet = self.snippet(raw, at, label)
        else:
            self.error(at, "eml", f'{label}: give a mail: eml = "tests/mail/….eml", or from/subject/body')
        expect = self.expectation(raw.get("expect"), at, label)
        if len(self.errors) > before or expect is None or mailbox is None or not isinstance(name, str):
            return None
        return RuleTest(
            name=name.strip(),
            path=self.source.path,
            line=line_of(self.lines, at) or 1,
            mailbox=mailbox,
            expect=expect,
            case=case.strip(" #[]").upper() if isinstance(case, str) else None,
            eml=eml.strip() if isinstance(eml, str) else None,
            snippet=snippet,
        )

    def snippet(self, raw: dict[str, Any], at: Path, label: str) -> Snippet | None:
        texts: dict[str, str] = {}
        for key in ("from", "to", "subject", "body"):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                self.error((*at, key), key, f"{label}: expected text")
                return None
            texts[key] = value
        if "from" in texts and "@" not in parseaddr(texts["from"])[1]:
            self.error((*at, "from"), "from", f'{label}: expected an address like "Ana <ana@buyer.example>"')
            return None
        headers = raw.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            self.error((*at, "headers"), "headers", f"{label}: expected a table of header name = text")
            return None
        attachments = raw.get("attachments", [])
        if not isinstance(attachments, list) or not all(isinstance(a, str) and a for a in attachments):
            self.error((*at, "attachments"), "attachments", f"{label}: expected a list of file names")
            return None
        defaults = Snippet()
        return Snippet(
            from_=texts.get("from", defaults.from_),
            to=texts.get("to", defaults.to),
            subject=texts.get("subject", ""),
            body=texts.get("body", ""),
            headers=tuple(headers.items()),
            attachments=tuple(attachments),
        )

    def expectation(self, value: Any, at: Path, label: str) -> Expectation | None:
        path: Path = (*at, "expect")
        if value is None:
            self.error(
                at, "expect", f'{label}: say what should happen, like expect.category = "cancellation"'
            )
            return None
        if not isinstance(value, dict) or not value:
            self.error(path, "expect", f"{label}: expected a table of expectations")
            return None
        before = len(self.errors)

        def bad(key: str, message: str) -> None:
            self.error((*path, key), f"expect.{key}", f"{label}: {message}")

        for key in value:
            if key not in EXPECT_KEYS:
                bad(key, f"unknown expectation '{key}'{suggestion(key, EXPECT_KEYS)}")

        def text(key: str, allowed: tuple[str, ...] | None = None) -> str | None:
            item = value.get(key)
            if item is None:
                return None
            if not isinstance(item, str) or not item.strip():
                bad(key, "expected text")
                return None
            if allowed is not None and item not in allowed:
                bad(key, f"unknown {key} '{item}'{suggestion(item, allowed)}")
                return None
            return item.strip()

        template: str | Literal[False] | None = None
        if "template" in value:
            item = value["template"]
            if item is False:
                template = False
            elif not isinstance(item, str) or not item.strip():
                bad("template", "expected a template name, or false for no reply")
            elif self.known_templates is not None and item not in self.known_templates:
                bad("template", f"no reply template named '{item}'{suggestion(item, self.known_templates)}")
            else:
                template = item.strip()
        reply = value.get("reply")
        if reply is not None and not isinstance(reply, bool):
            bad("reply", "expected true or false")
            reply = None
        tags = value.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            bad("tags", "expected a list of tags")
            tags = []
        numbers = value.get("order_numbers")
        if numbers is not None and (
            not isinstance(numbers, list) or not all(isinstance(n, str) and n.isdigit() for n in numbers)
        ):
            bad(
                "order_numbers",
                'expected a list of order numbers written as digits in quotes, like ["1625…"]',
            )
            numbers = None
        expectation = Expectation(
            category=text("category"),
            template=template,
            reply=reply,
            outcome=text("outcome", tuple(o.value for o in Outcome)),
            priority=text("priority", PRIORITIES),
            queue=text("queue"),
            assignee=text("assignee"),
            tags=tuple(tags),
            rule=text("rule"),
            intent=text("intent", tuple(i.value for i in Intent)),
            order_numbers=tuple(numbers) if numbers is not None else None,
        )
        return expectation if len(self.errors) == before else None


def snippet_message(test: RuleTest) -> bytes:
    """The raw message a snippet test stands for: plain UTF-8 text with a fixed date and Message-ID."""
    snippet = test.snippet or Snippet()
    message = EmailMessage()
    message["From"] = snippet.from_
    message["To"] = snippet.to
    message["Subject"] = snippet.subject
    message["Date"] = SNIPPET_DATE
    digest = hashlib.sha256(f"{test.path}:{test.name}".encode()).hexdigest()[:16]
    message["Message-ID"] = f"<rule-test.{digest}@rules-test.invalid>"
    for name, value in snippet.headers:
        message[name] = value
    body = snippet.body if snippet.body.endswith("\n") else snippet.body + "\n"
    # Written as plainly as a mail client would, so the .eml a supervisor saves looks like the snippet.
    plain = all(len(line) < 990 for line in body.splitlines())
    cte = ("7bit" if body.isascii() else "8bit") if plain else "quoted-printable"
    message.set_content(body, cte=cte)
    for filename in snippet.attachments:
        message.add_attachment(
            b"rule test placeholder\n", maintype="application", subtype="octet-stream", filename=filename
        )
    return message.as_bytes(policy=SMTP)
