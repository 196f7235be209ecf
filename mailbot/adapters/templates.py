"""Reply templates: supervisor-edited Jinja2 files under templates/, rendered only inside a sandbox.

Supervisors change the wording of replies without a deploy, so a template is untrusted input: it is
rendered by a sandbox whose every render is bounded in loops, string sizes, output and time
(`template_sandbox.py`) with `StrictUndefined` (a typo fails loudly instead of sending "Dear ,"),
files are size-capped, and `validate()` turns every mistake into a problem that names the file and
the line before a broken template can cost a buyer their reply. Rendered text is only ever a message
*body*; headers are built elsewhere from trusted values. Rendering is from an in-memory snapshot of
the folder (`template_files.py`), so the worker can keep the last good set while an edit is broken.

Layout: `<templates_dir>/<lang>/<name>.txt.j2` (required) and an optional `<name>.html.j2` sibling.
Files whose name starts with `_` are partials for `{% include %}`; the loader looks for them in the
language's own folder first, then in `_partials/`.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    Environment,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError

from mailbot.adapters.ports import RenderedReply
from mailbot.adapters.template_files import (
    DEFAULT_MAX_TEMPLATE_BYTES,
    ReplyTemplateError,
    SnapshotLoader,
    TemplateFileRefused,
    TemplateFiles,
    TemplateTooLarge,
    fingerprint,
    read_template_files,
)
from mailbot.adapters.template_sandbox import (
    DEFAULT_LIMITS,
    BoundedSandbox,
    RenderLimits,
    TemplateLimitError,
)

__all__ = [
    "CONTEXT_VARIABLES",
    "DEFAULT_LIMITS",
    "RenderLimits",
    "ReplyTemplateError",
    "ReplyTemplateNotFound",
    "TemplateFileRefused",
    "TemplateFiles",
    "TemplateLimitError",
    "TemplateProblem",
    "TemplateRenderError",
    "TemplateStore",
    "TemplateTooLarge",
    "check_templates",
    "main",
    "read_template_files",
    "sample_context",
]

DEFAULT_LANGUAGE = "en"
TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
PARTIALS_DIR = "_partials"

# The whole context contract. Adding a variable means changing ingest, this tuple and templates/README.md.
CONTEXT_VARIABLES: tuple[str, ...] = (
    "case_ref",
    "orders",
    "order",
    "buyer_name",
    "service",
    "mailbox_address",
    "subject",
    "category",
    "language",
)

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_LANGUAGE = re.compile(r"[a-z]{2,3}\Z")
_UNDEFINED_NAME = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # everything below space except \t and \n
_BLANK_RUN = re.compile(r"\n{3,}")


class ReplyTemplateNotFound(ReplyTemplateError, LookupError):
    """No `<lang>/<name>.txt.j2` for the requested language nor for English."""


class TemplateRenderError(ReplyTemplateError):
    """A template failed to compile or render (syntax, unknown variable, sandbox refusal...)."""


@dataclass(frozen=True)
class TemplateProblem:
    file: Path
    line: int | None  # None when the problem concerns the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.message}"


SAMPLE_ORDERS: tuple[str, ...] = ("240517893301234567", "240517893309876543")


def sample_context(
    *,
    orders: Sequence[str] = SAMPLE_ORDERS,
    service: str = "Production Monitoring",
    buyer_name: str = "Ana Lima",
    language: str = DEFAULT_LANGUAGE,
) -> dict[str, object]:
    """A realistic context with exactly the variables ingest passes; used by validate() and previews."""
    return {
        "case_ref": "K7Q2XZ",
        "orders": list(orders),
        "order": orders[0] if orders else None,
        "buyer_name": buyer_name,
        "service": service,
        "mailbox_address": "ta-inspection@example.com" if service == "Inspection" else "ta-pm@example.com",
        "subject": "Question about my order",
        "category": "general_question",
        "language": language,
    }


# validate() renders with both: every {% if orders %} branch and both services get exercised.
_SAMPLES = (
    sample_context(),
    sample_context(orders=(), service="Inspection", buyer_name=""),
)


class TemplateStore:
    """The reply templates in one folder; implements `ReplyRenderer`.

    It renders from a snapshot of the folder (`template_files.TemplateFiles`). A live store
    (`TemplateStore(folder)`) takes a new snapshot whenever the files change, so edits apply from the
    next render: what previews and one-off commands want. A pinned store
    (`TemplateStore.pinned(files)`) never looks at the disk again: what the worker renders with, after
    the snapshot passed `validate()`, so a broken edit never reaches a buyer.
    """

    def __init__(
        self,
        templates_dir: Path,
        *,
        max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES,
        limits: RenderLimits = DEFAULT_LIMITS,
    ) -> None:
        self._dir = Path(templates_dir)
        self._max_bytes = max_template_bytes
        self._limits = limits
        self._live = True
        self._files = TemplateFiles(root=self._dir, missing=True)
        self._environments: dict[str, BoundedSandbox] = {}
        self._refresh()

    @classmethod
    def pinned(cls, files: TemplateFiles, *, limits: RenderLimits = DEFAULT_LIMITS) -> TemplateStore:
        """A store that renders exactly `files`, whatever happens to the folder afterwards."""
        store = cls.__new__(cls)
        store._dir = files.root
        store._max_bytes = DEFAULT_MAX_TEMPLATE_BYTES
        store._limits = limits
        store._live = False
        store._files = files
        store._environments = {}
        return store

    @property
    def files(self) -> TemplateFiles:
        """The snapshot this store renders from."""
        self._refresh()
        return self._files

    def names(self) -> frozenset[str]:
        """Reply template names that exist in English, the fallback every language relies on."""
        self._refresh()
        return frozenset(self._reply_names(DEFAULT_LANGUAGE))

    def languages(self) -> frozenset[str]:
        """Languages with at least one reply template of their own."""
        self._refresh()
        return frozenset(d for d in self._language_dirs() if self._reply_names(d))

    def render(self, template: str, language: str, context: Mapping[str, object]) -> RenderedReply:
        """The reply body in the buyer's language, or in English when that language lacks this template."""
        self._refresh()
        if not _NAME.fullmatch(template):
            raise ReplyTemplateNotFound(f"{template!r} is not a template name (lowercase letters, digits, _)")
        used = self._language_for(template, language)
        environment = self._environment(used)
        text = _tidy(self._render(environment, used, template + TEXT_SUFFIX, context))
        if not text.strip():
            raise TemplateRenderError(f"{self._dir / used / template}{TEXT_SUFFIX}: the reply came out empty")
        html: str | None = None
        if self._files.exists(f"{used}/{template}{HTML_SUFFIX}"):
            html = _tidy(self._render(environment, used, template + HTML_SUFFIX, context))
        return RenderedReply(text=text, html=html, language=used, template=template)

    def validate(self) -> list[TemplateProblem]:
        """Every problem in every template file, each with file, line (when known) and a plain message."""
        self._refresh()
        if self._files.missing:
            return [TemplateProblem(self._dir, None, "the templates folder does not exist")]
        english = frozenset(self._reply_names(DEFAULT_LANGUAGE))
        problems: list[TemplateProblem] = []
        folders = [*self._language_dirs(), *[d for d in [PARTIALS_DIR] if d in self._files.folders()]]
        for folder in folders:
            for relative in self._files.files(folder):
                problems.extend(self._check_placement(relative, english))
                problems.extend(self._check_file(relative))
        return list(dict.fromkeys(problems))  # a broken partial shows up once, not once per includer

    def _refresh(self) -> None:
        """A live store takes a new snapshot when the files changed (their metadata says so)."""
        if self._live and (self._files.missing or fingerprint(self._dir) != self._files.fingerprint):
            self._files = read_template_files(self._dir, max_bytes=self._max_bytes)
            self._environments = {}

    # -- rendering ----------------------------------------------------------------------------------

    def _language_for(self, template: str, language: str) -> str:
        base = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
        candidates = [base] if _LANGUAGE.fullmatch(base) else []
        for candidate in [*candidates, DEFAULT_LANGUAGE]:
            if self._files.exists(f"{candidate}/{template}{TEXT_SUFFIX}"):
                return candidate
        looked = dict.fromkeys([*candidates, DEFAULT_LANGUAGE])
        tried = " and ".join(f"{c}/{template}{TEXT_SUFFIX}" for c in looked)
        raise ReplyTemplateNotFound(f"no reply template {template!r}: looked for {tried} in {self._dir}")

    def _environment(self, language: str) -> BoundedSandbox:
        environments = self._environments
        environment = environments.get(language)
        if environment is None:
            environment = BoundedSandbox(
                limits=self._limits,
                loader=SnapshotLoader(self._files, [language, PARTIALS_DIR]),
                undefined=StrictUndefined,
                # select_autoescape matches the whole suffix, so "html.j2" must be listed as such.
                autoescape=select_autoescape(
                    enabled_extensions=("html.j2",),
                    disabled_extensions=("txt.j2",),
                    default_for_string=False,
                    default=False,
                ),
                # A line holding only a tag or comment disappears, header comment included; a partial
                # keeps its last newline, so two {% include %} lines give two lines.
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                auto_reload=False,
            )
            environments[language] = environment
        return environment

    def _render(
        self, environment: BoundedSandbox, language: str, name: str, context: Mapping[str, object]
    ) -> str:
        path = self._dir / language / name
        try:
            return environment.get_template(name).render(dict(context))
        except TemplateTooLarge:
            raise
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(f"{exc.filename or path}:{exc.lineno}: {exc.message}") from exc
        except Exception as exc:  # anything a supervisor's edit can provoke; the caller records it
            file, line = _position(exc, path)
            raise TemplateRenderError(f"{file}:{line or '?'}: {_describe(exc)}") from exc

    # -- validation ---------------------------------------------------------------------------------

    def _check_placement(self, relative: str, english: frozenset[str]) -> list[TemplateProblem]:
        path = self._files.path(relative)
        folder, file_name = relative.split("/", 1)
        name, suffix = _split(file_name)
        if suffix is None:
            return [TemplateProblem(path, None, f"template files end in {TEXT_SUFFIX} or {HTML_SUFFIX}")]
        if name.startswith("_") or folder == PARTIALS_DIR:
            return []
        if not _NAME.fullmatch(name):
            return [TemplateProblem(path, None, "names use lowercase letters, digits and _ only")]
        problems = []
        if suffix == HTML_SUFFIX and not self._files.exists(f"{folder}/{name}{TEXT_SUFFIX}"):
            problems.append(TemplateProblem(path, None, f"needs a plain-text {name}{TEXT_SUFFIX} next to it"))
        if suffix == TEXT_SUFFIX and folder != DEFAULT_LANGUAGE and name not in english:
            fallback = f"{DEFAULT_LANGUAGE}/{name}{TEXT_SUFFIX}"
            problems.append(TemplateProblem(path, None, f"no English version {fallback}, the fallback"))
        return problems

    def _check_file(self, relative: str) -> list[TemplateProblem]:
        path = self._files.path(relative)
        refused = self._files.refused.get(relative)
        if refused is not None:
            return [TemplateProblem(path, None, str(refused).removeprefix(f"{path}: "))]
        source = self._files.texts[relative]
        folder = relative.split("/", 1)[0]
        environment = self._environment(DEFAULT_LANGUAGE if folder == PARTIALS_DIR else folder)
        try:
            tree = environment.parse(source, path.name, str(path))
            code = environment.compile(tree, path.name, str(path))
        except TemplateSyntaxError as exc:
            return [TemplateProblem(path, exc.lineno, f"syntax error: {exc.message}")]
        problems = [*_unknown_variables(path, tree, environment), *_private_attributes(path, tree)]
        if problems:
            return problems  # rendering would only repeat them
        template = environment.template_class.from_code(environment, code, environment.make_globals(None))
        seen: dict[tuple[Path, int | None, str], None] = {}
        for sample in _SAMPLES:
            try:
                output = template.render(sample)  # bounded: a template over a limit fails here
            except Exception as exc:  # validation reports, never raises
                file, line = _position(exc, path)
                seen[(file, line, _describe(exc))] = None
                continue
            if not path.name.startswith("_") and not output.strip():
                seen[(path, None, "renders to an empty reply")] = None
        return [TemplateProblem(*key) for key in seen]

    # -- files --------------------------------------------------------------------------------------

    def _language_dirs(self) -> list[str]:
        return [d for d in self._files.folders() if not d.startswith(("_", "."))]

    def _reply_names(self, folder: str) -> list[str]:
        names = (_split(r.split("/", 1)[1]) for r in self._files.files(folder))
        return [name for name, suffix in names if suffix == TEXT_SUFFIX and not name.startswith("_")]


def check_templates(root: Path) -> list[str]:
    """One line per problem in the templates under `root` ("templates/en/x.txt.j2:3: ..."); [] when fine.

    For health and other callers that only need to know whether the set is usable, and why not.
    """
    return [str(problem) for problem in TemplateStore(root).validate()]


def _split(file_name: str) -> tuple[str, str | None]:
    for suffix in (TEXT_SUFFIX, HTML_SUFFIX):
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)], suffix
    return file_name, None


def _tidy(text: str) -> str:
    """One trailing newline, no trailing spaces, at most one blank line in a row, no control characters."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip("\n") + "\n"


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, CONTEXT_VARIABLES, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; known variables: {', '.join(CONTEXT_VARIABLES)}"


def _unknown_variables(path: Path, tree: nodes.Template, environment: Environment) -> list[TemplateProblem]:
    """Variables no context provides, found statically so that untaken {% if %} branches are checked too."""
    unknown = meta.find_undeclared_variables(tree) - set(CONTEXT_VARIABLES) - set(environment.globals)
    problems = []
    for name in sorted(unknown):
        line = min(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"), default=None
        )
        problems.append(TemplateProblem(path, line, f"unknown variable '{name}'{_suggest(name)}"))
    return problems


def _private_attributes(path: Path, tree: nodes.Template) -> list[TemplateProblem]:
    """`x.__class__` and friends: the sandbox refuses them at render time; say so before that."""
    return [
        TemplateProblem(path, node.lineno, f"sandbox: attribute '{node.attr}' is not allowed (starts with _)")
        for node in tree.find_all(nodes.Getattr)
        if node.attr.startswith("_")
    ]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        match = _UNDEFINED_NAME.match(str(exc))
        if match:
            return f"unknown variable '{match.group(1)}'{_suggest(match.group(1))}"
        return f"undefined: {exc}"
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, TemplateLimitError):
        return f"limit: {exc}"
    if isinstance(exc, SecurityError):
        return f"sandbox: {exc}"
    if isinstance(exc, TemplateNotFound):
        return f"includes {exc.name!r}, which is neither in this language's folder nor in {PARTIALS_DIR}/"
    if isinstance(exc, ReplyTemplateError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _position(exc: BaseException, default: Path) -> tuple[Path, int | None]:
    """The template file and line an error happened on: Jinja rewrites tracebacks to template lines."""
    found: tuple[Path, int | None] = (default, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m mailbot.adapters.templates check|preview`: the supervisor's safety net before saving."""
    parser = argparse.ArgumentParser(prog="python -m mailbot.adapters.templates", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("templates"), help="the templates folder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="report every problem with file and line; exit 1 if any")
    preview = commands.add_parser("preview", help="render one template with the sample context")
    preview.add_argument("name")
    preview.add_argument("--language", default=DEFAULT_LANGUAGE)
    preview.add_argument(
        "--service", default="Production Monitoring", choices=["Production Monitoring", "Inspection"]
    )
    preview.add_argument("--no-orders", action="store_true", help="as if the buyer gave no order number")
    preview.add_argument("--buyer-name", default="Ana Lima")
    args = parser.parse_args(list(argv) if argv is not None else None)
    store = TemplateStore(args.dir)
    if args.command == "check":
        problems = store.validate()
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s) in {args.dir}", file=sys.stderr)
        return 1 if problems else 0
    context = sample_context(
        orders=() if args.no_orders else SAMPLE_ORDERS,
        service=args.service,
        buyer_name=args.buyer_name,
        language=args.language,
    )
    try:
        reply = store.render(args.name, args.language, context)
    except ReplyTemplateError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"--- {reply.template} ({reply.language}) ---")
    print(reply.text, end="")
    if reply.html is not None:
        print(f"--- {reply.template}.html ({reply.language}) ---")
        print(reply.html, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
