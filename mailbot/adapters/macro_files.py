"""Canned responses (macros): supervisor-maintained TOML files next to the reply templates.

`<templates_dir>/macros/<name>.toml`, one macro a file, so a supervisor adds or removes one without
touching the others:

    label = "Cancellation confirmed"       # what the button on the case page says
    template = "cancellation_received"     # a reply template (templates/<lang>/<name>.txt.j2)
    status = "waiting"                     # optional: the case's status after the reply is queued

A macro is untrusted input like a template: every mistake is one problem naming file and line, and a
broken macro is left out of the console rather than offered half-understood.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

MACROS_DIR = "macros"
_KEYS = {"label": str, "template": str, "status": str}
_REQUIRED = ("label", "template")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_BYTES = 16 * 1024
_MAX_LABEL = 80


@dataclass(frozen=True)
class Macro:
    name: str  # the file's stem
    label: str
    template: str
    status: str | None


@dataclass(frozen=True)
class MacroProblem:
    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class MacroSet:
    macros: tuple[Macro, ...]
    problems: tuple[MacroProblem, ...]


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def read_macros(templates_dir: Path, *, templates: Collection[str], statuses: Collection[str]) -> MacroSet:
    """Every macro under `templates_dir/macros/`, and one problem per mistake (with file and line).

    `templates` are the reply template names that exist, `statuses` the statuses staff may set.
    """
    folder = Path(templates_dir) / MACROS_DIR
    if not folder.is_dir():
        return MacroSet((), ())
    macros: list[Macro] = []
    problems: list[MacroProblem] = []
    for path in sorted(folder.glob("*.toml")):
        found, wrong = _read_one(path, templates, statuses)
        problems.extend(wrong)
        if found is not None and not wrong:
            macros.append(found)
    return MacroSet(tuple(macros), tuple(problems))


def _read_one(
    path: Path, templates: Collection[str], statuses: Collection[str]
) -> tuple[Macro | None, list[MacroProblem]]:
    if not _NAME.match(path.stem):
        return None, [MacroProblem(path, None, "macro file names use lowercase letters, digits and _ only")]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [MacroProblem(path, None, f"cannot be read: {exc.strerror or exc}")]
    if len(raw) > _MAX_BYTES:
        return None, [MacroProblem(path, None, f"larger than {_MAX_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        return None, [MacroProblem(path, None, "not UTF-8 text")]
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        return None, [MacroProblem(path, line, f"not valid TOML: {str(exc).split(' (at line')[0]}")]
    problems: list[MacroProblem] = []
    for key, value in data.items():
        expected = _KEYS.get(key)
        if expected is None:
            known = ", ".join(_KEYS)
            problems.append(MacroProblem(path, _line_of(text, key), f"unknown key {key!r}; known: {known}"))
        elif not isinstance(value, expected):
            problems.append(MacroProblem(path, _line_of(text, key), f"{key} must be a string"))
    for key in _REQUIRED:
        if key not in data:
            problems.append(MacroProblem(path, None, f"{key} is missing"))
    if problems:
        return None, problems
    label = " ".join(str(data["label"]).split())
    template = str(data["template"])
    status = data.get("status")
    if not label or len(label) > _MAX_LABEL:
        problems.append(
            MacroProblem(path, _line_of(text, "label"), f"label must be 1 to {_MAX_LABEL} characters")
        )
    if template not in templates:
        problems.append(
            MacroProblem(path, _line_of(text, "template"), f"no reply template {template!r} (templates/en/)")
        )
    if status is not None and status not in statuses:
        problems.append(
            MacroProblem(
                path, _line_of(text, "status"), f"unknown status {status!r}; one of: {', '.join(statuses)}"
            )
        )
    return Macro(path.stem, label, template, None if status is None else str(status)), problems
