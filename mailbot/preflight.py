"""Preflight: the files and folders a command will touch, checked before it starts, one line each.

`load_settings` checks what the config file *says*; this module checks that the world matches it
(a data folder mailbot can write, rule and template folders it can read, a Maildir that exists,
a CA file that exists). The checks run only for the commands that need them: a staff member
listing cases must not be stopped by a Maildir path or an IMAP password they have nothing to do
with. Every problem is a `SettingsError` naming the config file and the key, then the path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mailbot.settings import Settings, SettingsError, check_secrets

# What the rule and template folders hold; anything else in them (notes, backups) is not read.
_RULE_SUFFIXES = (".toml",)
_TEMPLATE_SUFFIXES = (".j2",)


def check_for_intake(settings: Settings) -> None:
    """Everything `poll` and `run` need before they connect: secrets, folders, files."""
    check_secrets(settings)
    prepare_data_dir(settings)
    check_rules_dir(settings)
    check_templates_dir(settings)
    for name, box in settings.mailboxes.items():
        if not box.enabled:
            continue
        if box.source == "maildir":
            _check_maildir(settings, name)
        elif box.imap is not None and box.imap.ca_file:
            _check_file(settings, f"mailboxes.{name}.imap.ca_file", Path(box.imap.ca_file))
    if settings.smtp is not None and settings.smtp.ca_file:
        _check_file(settings, "smtp.ca_file", Path(settings.smtp.ca_file))


def prepare_data_dir(settings: Settings) -> None:
    """Create `data_dir` if needed and prove mailbot can write in it, by writing a file.

    Permission bits alone would not tell (root ignores them; a read-only mount or an immutable
    folder refuses root too), so the check does what mailbot will do: create a file there.
    """
    target = settings.data_dir
    key = f"{settings.source}: data_dir"
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise SettingsError(f"{key}: cannot use {target}: {existing} is a file, not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"{key}: cannot create {target}: {existing} is not writable ({exc.strerror})"
        ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=target, prefix=".mailbot-write-check-")
    except OSError as exc:
        raise SettingsError(f"{key}: {target} is not writable ({exc.strerror})") from None
    os.close(handle)
    Path(probe).unlink()


def check_rules_dir(settings: Settings) -> None:
    """The rules folder and every rule file in it can be read; `routing.toml` exists."""
    key = f"{settings.source}: rules_dir"
    _check_readable_tree(key, settings.rules_dir, _RULE_SUFFIXES)
    routing = settings.rules_dir / "routing.toml"
    if not routing.is_file():
        raise SettingsError(f"{key}: {routing} does not exist (the main routing file)")


def check_templates_dir(settings: Settings) -> None:
    """The reply templates folder exists and every template in it can be read."""
    _check_readable_tree(f"{settings.source}: templates_dir", settings.templates_dir, _TEMPLATE_SUFFIXES)


def _check_readable_tree(key: str, root: Path, suffixes: tuple[str, ...]) -> None:
    if not root.exists():
        raise SettingsError(f"{key}: {root} does not exist")
    if not root.is_dir():
        raise SettingsError(f"{key}: {root} is a file, not a folder")
    try:
        for folder, subfolders, files in os.walk(root, onerror=_raise):
            subfolders.sort()
            for name in sorted(files):
                if name.endswith(suffixes):
                    _check_readable(key, Path(folder) / name)
    except OSError as exc:  # a folder that cannot be listed
        raise SettingsError(f"{key}: cannot read the folder {exc.filename} ({exc.strerror})") from None


def _raise(error: OSError) -> None:
    raise error


def _check_readable(key: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise SettingsError(f"{key}: cannot read {path} ({exc.strerror})") from None


def _check_file(settings: Settings, key: str, path: Path) -> None:
    where = f"{settings.source}: {key}"
    if not path.exists():
        raise SettingsError(f"{where}: {path} does not exist")
    if not path.is_file():
        raise SettingsError(f"{where}: {path} is not a file")
    _check_readable(where, path)


def _check_maildir(settings: Settings, mailbox: str) -> None:
    """A Maildir that does not exist would be read as empty forever: refuse it instead."""
    key = f"{settings.source}: mailboxes.{mailbox}.maildir.path"
    path = settings.maildir_path(mailbox)
    if not path.is_dir():
        raise SettingsError(f"{key}: {path} does not exist or is not a folder (a Maildir has cur/ and new/)")
    if not (path / "new").is_dir():
        raise SettingsError(f"{key}: {path} is not a Maildir (it has no new/ folder)")
    try:
        next((path / "new").iterdir(), None)
    except OSError as exc:
        raise SettingsError(f"{key}: cannot read {path / 'new'} ({exc.strerror})") from None
