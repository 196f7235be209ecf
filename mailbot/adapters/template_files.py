"""The reply template files of one folder, read at one moment into memory.

Rendering from a snapshot rather than from the disk is what lets a broken edit be refused: the
worker validates a snapshot and renders only from a snapshot that passed, so the last good set stays
in charge while a supervisor is still typing. It also makes what was validated exactly what is
rendered, and gives the set a content digest that becomes part of the rule-set version.

Layout: `<root>/<lang>/<name>.txt.j2` (and `.html.j2`), partials `_<name>.txt.j2` in a language
folder or in `_partials/`. Folders starting with `.` and files not ending in `.j2` are not read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound
from jinja2.loaders import split_template_path

from mailbot.core.rules.schema import RuleSource

TEMPLATE_SUFFIX = ".j2"
DEFAULT_MAX_TEMPLATE_BYTES = 20_000
MAX_TEMPLATE_FILES = 2_000

#: (relative path, mtime in ns, size, inode) of every template file: changes whenever a file does.
Fingerprint = tuple[tuple[str, int, int, int], ...]


class ReplyTemplateError(Exception):
    """A reply template could not be found, loaded or rendered. The message names the file."""


class TemplateTooLarge(ReplyTemplateError):
    """A template file is over the size cap and is refused unread."""


class TemplateFileRefused(ReplyTemplateError):
    """A template file cannot be used at all: not UTF-8, or a link that leads outside the folder."""


@dataclass(frozen=True)
class TemplateFiles:
    """Every template file's text, by path relative to the root (`en/acknowledgement.txt.j2`).

    `refused` holds the files that were found but not read, with the error rendering them raises:
    they are reported by validation and fail loudly when used, never silently skipped.
    """

    root: Path
    texts: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, ReplyTemplateError] = field(default_factory=dict)
    fingerprint: Fingerprint = ()
    missing: bool = False  # the folder itself does not exist

    def exists(self, relative: str) -> bool:
        return relative in self.texts or relative in self.refused

    def folders(self) -> list[str]:
        return sorted({relative.split("/", 1)[0] for relative in (*self.texts, *self.refused)})

    def files(self, folder: str) -> list[str]:
        prefix = folder + "/"
        return sorted(r for r in (*self.texts, *self.refused) if r.startswith(prefix))

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def digest(self) -> str:
        """SHA-256 of every file's relative path and text: the same files always give the same digest."""
        hashed = hashlib.sha256()
        for relative in sorted(self.texts):
            hashed.update(relative.encode("utf-8") + b"\0" + self.texts[relative].encode("utf-8") + b"\0")
        for relative in sorted(self.refused):
            hashed.update(relative.encode("utf-8") + b"\0refused\0")
        return hashed.hexdigest()

    def sources(self) -> list[RuleSource]:
        """The files as rule sources, so that they are versioned and kept with the rules they serve."""
        return [RuleSource(str(self.root / name), self.texts[name]) for name in sorted(self.texts)]


def fingerprint(root: Path) -> Fingerprint:
    """What the folder holds now, from file metadata only (cheap enough to ask every few seconds)."""
    found: list[tuple[str, int, int, int]] = []
    for folder in _folders(root):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(TEMPLATE_SUFFIX):
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue
            found.append((f"{folder.name}/{entry.name}", stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(sorted(found))


def read_template_files(root: Path, *, max_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES) -> TemplateFiles:
    """Read every template file under `root`; a file that cannot be used is kept in `refused`."""
    root = Path(root)
    if not root.is_dir():
        return TemplateFiles(root=root, missing=True)
    real_root = root.resolve()
    stamp = fingerprint(root)
    texts: dict[str, str] = {}
    refused: dict[str, ReplyTemplateError] = {}
    for relative, _mtime, size, _inode in stamp[:MAX_TEMPLATE_FILES]:
        path = root / relative
        if not path.is_file():
            continue
        if not path.resolve().is_relative_to(real_root):
            refused[relative] = TemplateFileRefused(f"{path}: the file resolves outside {real_root}")
        elif size > max_bytes:
            refused[relative] = TemplateTooLarge(f"{path}: {size} bytes, over the limit of {max_bytes}")
        else:
            data = path.read_bytes()[: max_bytes + 1]
            try:
                texts[relative] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                refused[relative] = TemplateFileRefused(
                    f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)"
                )
    return TemplateFiles(root=root, texts=texts, refused=refused, fingerprint=stamp)


def _folders(root: Path) -> list[Path]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))


class SnapshotLoader(BaseLoader):
    """Serves templates from a snapshot, looking in each of `folders` in turn (a language, then _partials)."""

    def __init__(self, files: TemplateFiles, folders: list[str]) -> None:
        self.files = files
        self.folders = folders

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)  # raises TemplateNotFound on ".." and the like
        for folder in self.folders:
            relative = "/".join([folder, *pieces])
            problem = self.files.refused.get(relative)
            if problem is not None:
                raise type(problem)(str(problem))  # a fresh one: a kept exception would pile up tracebacks
            text = self.files.texts.get(relative)
            if text is not None:
                return text, str(self.files.path(relative)), _always
        raise TemplateNotFound(template)


def _always() -> bool:
    return True
